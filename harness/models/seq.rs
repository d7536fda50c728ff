//! Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4).
//!
//! "It is essential to remember that the actual sequence number space is finite, though
//! very large ... all arithmetic dealing with sequence numbers must be performed modulo
//! 2**32." Comparisons are valid for numbers less than 2^31 apart.

/// `a < b` in sequence space.
pub fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a <= b` in sequence space.
pub fn le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// `a > b` in sequence space.
pub fn gt(a: u32, b: u32) -> bool {
    lt(b, a)
}

/// `a >= b` in sequence space.
pub fn ge(a: u32, b: u32) -> bool {
    le(b, a)
}

/// `start <= x < start + len` in sequence space.
pub fn in_window(x: u32, start: u32, len: u32) -> bool {
    x.wrapping_sub(start) < len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around() {
        assert!(lt(u32::MAX, 0));
        assert!(gt(0, u32::MAX));
        assert!(le(5, 5) && ge(5, 5) && !lt(5, 5));
        assert!(in_window(1, u32::MAX - 1, 4));
        assert!(!in_window(2, u32::MAX - 1, 4));
        assert!(!in_window(7, 7, 0));
    }
}
