//! atp-bench's integration tests (one binary): reports rendered from a synthetic store, and
//! the HTML report in a real headless browser.

mod browser;
mod reports;
