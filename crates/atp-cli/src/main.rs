//! `atp` — run automated theorem provers on Lean projects in isolated sandboxes.

fn main() {
    println!("atp (in progress)");
}
