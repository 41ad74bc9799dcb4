/// Reassembles lines from a byte stream that arrives in arbitrary chunks.
///
/// Invariant: a line is emitted exactly once, when its `\n` arrives (or at [`finish`]); a UTF-8
/// sequence split across chunks is decoded whole, never replaced; a trailing `\r` is kept out.
///
/// [`finish`]: LineSplitter::finish
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed a chunk; returns the lines it completes, without their terminators.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            self.pending.extend_from_slice(&rest[..pos]);
            out.push(decode_line(&mut self.pending));
            rest = &rest[pos + 1..];
        }
        self.pending.extend_from_slice(rest);
        out
    }

    /// The unterminated last line, if any.
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            None
        } else {
            Some(decode_line(&mut self.pending))
        }
    }
}

fn decode_line(buf: &mut Vec<u8>) -> String {
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    let line = String::from_utf8_lossy(buf).into_owned();
    buf.clear();
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_across_every_chunk_boundary() {
        let text = "héllo wörld\n∀ x, x = x\r\nlast ✓";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            for cut2 in cut..=bytes.len() {
                let mut s = LineSplitter::new();
                let mut lines = s.push(&bytes[..cut]);
                lines.extend(s.push(&bytes[cut..cut2]));
                lines.extend(s.push(&bytes[cut2..]));
                lines.extend(s.finish());
                assert_eq!(lines, vec!["héllo wörld", "∀ x, x = x", "last ✓"]);
            }
        }
    }

    #[test]
    fn empty_lines_survive() {
        let mut s = LineSplitter::new();
        assert_eq!(s.push(b"\n\na\n"), vec!["", "", "a"]);
        assert_eq!(s.finish(), None);
    }
}
