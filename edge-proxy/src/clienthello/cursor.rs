//! A bounds-checked reader over attacker-controlled bytes: every accessor returns `None`
//! instead of indexing past the end, so no length field can panic us.

#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        self.rest = tail;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&b, tail) = self.rest.split_first()?;
        self.rest = tail;
        Some(b)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    pub(crate) fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(
            usize::from(*b.first()?) << 16 | usize::from(*b.get(1)?) << 8 | usize::from(*b.get(2)?),
        )
    }

    /// An opaque vector with a one-byte length prefix (RFC 8446 §3.4).
    pub(crate) fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// An opaque vector with a two-byte length prefix (RFC 8446 §3.4).
    pub(crate) fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_return_none() {
        let mut c = Cursor::new(&[0x00, 0x05, 1, 2]);
        assert_eq!(c.vec16(), None);
        let mut c = Cursor::new(&[1]);
        assert_eq!(c.u16(), None);
        assert_eq!(Cursor::new(&[0, 0]).u24(), None);
    }

    #[test]
    fn reads_big_endian() {
        let mut c = Cursor::new(&[0x01, 0x02, 0x03, 0x04, 0x05, 0x06]);
        assert_eq!(c.u16(), Some(0x0102));
        assert_eq!(c.u24(), Some(0x030405));
        assert_eq!(c.u8(), Some(6));
        assert!(c.is_empty());
    }
}
