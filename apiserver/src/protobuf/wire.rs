//! The protobuf wire format: a message is a sequence of (field number, value)
//! records; see https://protobuf.dev/programming-guides/encoding/.

use super::{malformed, ProtobufError};

/// One record's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    /// Length-delimited: strings, bytes, messages, packed repeated scalars.
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Iterates over the records of one message.
pub(super) struct Records<'a> {
    buf: &'a [u8],
}

pub(super) fn records(buf: &[u8]) -> Records<'_> {
    Records { buf }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(u32, Value<'a>), ProtobufError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let record = self.record();
        if record.is_err() {
            // Nothing after a malformed record can be trusted.
            self.buf = &[];
        }
        Some(record)
    }
}

impl<'a> Records<'a> {
    fn record(&mut self) -> Result<(u32, Value<'a>), ProtobufError> {
        let key = varint(&mut self.buf)?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| malformed(format!("invalid field number {}", key >> 3)))?;
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut self.buf)?),
            1 => Value::Fixed64(u64::from_le_bytes(take_array(&mut self.buf)?)),
            2 => {
                let len = usize::try_from(varint(&mut self.buf)?)
                    .map_err(|_| malformed("length out of range"))?;
                Value::Bytes(take(&mut self.buf, len)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(take_array(&mut self.buf)?)),
            // 3 and 4 are the long-deprecated groups, never used by Kubernetes.
            other => return Err(malformed(format!("unsupported wire type {other}"))),
        };
        Ok((number, value))
    }
}

/// Reads a base-128 varint from the front of `buf`.
pub(super) fn varint(buf: &mut &[u8]) -> Result<u64, ProtobufError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf
            .split_first()
            .ok_or_else(|| malformed("truncated varint"))?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(malformed("varint longer than 10 bytes"))
}

fn take<'a>(buf: &mut &'a [u8], len: usize) -> Result<&'a [u8], ProtobufError> {
    if buf.len() < len {
        return Err(malformed("truncated field"));
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

fn take_array<const N: usize>(buf: &mut &[u8]) -> Result<[u8; N], ProtobufError> {
    let bytes = take(buf, N)?;
    let mut array = [0u8; N];
    array.copy_from_slice(bytes);
    Ok(array)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(buf: &[u8]) -> Result<Vec<(u32, Value<'_>)>, ProtobufError> {
        records(buf).collect()
    }

    #[test]
    fn reads_each_wire_type() {
        let buf = [
            0x08, 0x96, 0x01, // 1: varint 150
            0x11, 1, 0, 0, 0, 0, 0, 0, 0, // 2: fixed64 1
            0x1a, 0x02, b'h', b'i', // 3: bytes "hi"
            0x25, 2, 0, 0, 0, // 4: fixed32 2
        ];
        assert_eq!(
            all(&buf).unwrap(),
            vec![
                (1, Value::Varint(150)),
                (2, Value::Fixed64(1)),
                (3, Value::Bytes(b"hi")),
                (4, Value::Fixed32(2)),
            ]
        );
    }

    #[test]
    fn negative_int32_is_a_ten_byte_varint() {
        let mut buf: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(varint(&mut buf).unwrap() as i64, -1);
    }

    #[test]
    fn rejects_truncation_and_garbage() {
        assert!(all(&[0x0a, 0x05, b'a']).is_err(), "length beyond the end");
        assert!(all(&[0x08]).is_err(), "varint missing");
        assert!(all(&[0x08, 0x80]).is_err(), "varint cut short");
        assert!(all(&[0x0b]).is_err(), "group wire type");
        assert!(all(&[0x00, 0x01]).is_err(), "field number 0");
        assert!(all(&[0x09, 1, 2]).is_err(), "fixed64 cut short");
        let long = [0xffu8; 11];
        assert!(all(&long).is_err(), "overlong varint");
    }

    #[test]
    fn stops_after_an_error() {
        let mut it = records(&[0x0b, 0x08, 0x01]);
        assert!(matches!(it.next(), Some(Err(_))));
        assert!(it.next().is_none());
    }
}
