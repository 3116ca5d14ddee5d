//! Classic libpcap capture files: count, read and write.
//!
//! Replay needs the number of frames in its input (net_pcap gives no
//! end-of-file signal, so the replay is drained when the port has received
//! that many); tests and corpus tools read and write captures. Both
//! microsecond (0xa1b2c3d4) and nanosecond (0xa1b23c4d) magics are read,
//! in either byte order; pcapng is refused with a clear message.

use std::io::{self, Read, Write};
use std::path::Path;

/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// A frame from a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Capture time in microseconds since the epoch.
    pub ts_us: u64,
    pub data: Vec<u8>,
    /// Original length on the wire (may exceed `data.len()` if snapped).
    pub orig_len: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("{path}: {err}")]
    Io { path: String, err: io::Error },
    #[error("{path}: pcapng files are not supported; convert with `editcap -F pcap`")]
    Pcapng { path: String },
    #[error("{path}: not a pcap file (magic {magic:#010x})")]
    BadMagic { path: String, magic: u32 },
    #[error("{path}: link type {linktype} is not Ethernet")]
    NotEthernet { path: String, linktype: u32 },
    #[error("{path}: record {index} is cut short")]
    Truncated { path: String, index: usize },
    #[error("{path}: record {index} claims {len} bytes, more than the snap length")]
    BadRecord {
        path: String,
        index: usize,
        len: u32,
    },
}

/// Reads every record of a pcap file.
pub fn read(path: &Path) -> Result<Vec<Record>, PcapError> {
    let p = path.display().to_string();
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|err| PcapError::Io {
            path: p.clone(),
            err,
        })?;
    parse(&bytes, &p)
}

/// Counts the records of a pcap file (checking every header).
pub fn count(path: &Path) -> Result<usize, PcapError> {
    read(path).map(|r| r.len())
}

/// Parses pcap bytes; `path` only labels errors.
pub fn parse(bytes: &[u8], path: &str) -> Result<Vec<Record>, PcapError> {
    let p = || path.to_owned();
    if bytes.len() < 24 {
        return Err(PcapError::Truncated {
            path: p(),
            index: 0,
        });
    }
    let magic_le = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let magic_be = u32::from_be_bytes(bytes[0..4].try_into().unwrap());
    let (le, nanos) = match (magic_le, magic_be) {
        (0xa1b2c3d4, _) => (true, false),
        (0xa1b23c4d, _) => (true, true),
        (_, 0xa1b2c3d4) => (false, false),
        (_, 0xa1b23c4d) => (false, true),
        (0x0a0d0d0a, _) => return Err(PcapError::Pcapng { path: p() }),
        _ => {
            return Err(PcapError::BadMagic {
                path: p(),
                magic: magic_be,
            })
        }
    };
    let u32_at = |b: &[u8], o: usize| {
        let a: [u8; 4] = b[o..o + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let snaplen = u32_at(bytes, 16);
    let linktype = u32_at(bytes, 20) & 0x0fff_ffff;
    if linktype != LINKTYPE_ETHERNET {
        return Err(PcapError::NotEthernet {
            path: p(),
            linktype,
        });
    }
    let mut out = Vec::new();
    let mut off = 24;
    while off < bytes.len() {
        let index = out.len();
        if bytes.len() - off < 16 {
            return Err(PcapError::Truncated { path: p(), index });
        }
        let sec = u32_at(bytes, off) as u64;
        let frac = u32_at(bytes, off + 4) as u64;
        let incl = u32_at(bytes, off + 8);
        let orig = u32_at(bytes, off + 12);
        if incl > snaplen.max(262_144) {
            return Err(PcapError::BadRecord {
                path: p(),
                index,
                len: incl,
            });
        }
        off += 16;
        if bytes.len() - off < incl as usize {
            return Err(PcapError::Truncated { path: p(), index });
        }
        let ts_us = sec * 1_000_000 + if nanos { frac / 1000 } else { frac };
        out.push(Record {
            ts_us,
            data: bytes[off..off + incl as usize].to_vec(),
            orig_len: orig,
        });
        off += incl as usize;
    }
    Ok(out)
}

/// Writes a microsecond pcap of Ethernet frames.
pub fn write<'a>(
    mut w: impl Write,
    frames: impl IntoIterator<Item = (u64, &'a [u8])>,
) -> io::Result<()> {
    let mut hdr = Vec::with_capacity(24);
    hdr.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&0i32.to_le_bytes());
    hdr.extend_from_slice(&0u32.to_le_bytes());
    hdr.extend_from_slice(&262_144u32.to_le_bytes());
    hdr.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    w.write_all(&hdr)?;
    for (ts, data) in frames {
        let mut r = Vec::with_capacity(16);
        r.extend_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
        r.extend_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
        r.extend_from_slice(&(data.len() as u32).to_le_bytes());
        r.extend_from_slice(&(data.len() as u32).to_le_bytes());
        w.write_all(&r)?;
        w.write_all(data)?;
    }
    w.flush()
}

/// Writes frames to a pcap file.
pub fn write_file<'a>(
    path: &Path,
    frames: impl IntoIterator<Item = (u64, &'a [u8])>,
) -> io::Result<()> {
    let f = std::fs::File::create(path)?;
    write(io::BufWriter::new(f), frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let frames: Vec<(u64, Vec<u8>)> =
            vec![(1_500_000, vec![1, 2, 3]), (2_000_001, vec![9; 60])];
        let mut buf = Vec::new();
        write(&mut buf, frames.iter().map(|(t, d)| (*t, d.as_slice()))).unwrap();
        let r = parse(&buf, "mem").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].ts_us, 1_500_000);
        assert_eq!(r[1].data, vec![9; 60]);
    }

    #[test]
    fn refuses_bad_files() {
        assert!(matches!(
            parse(&[0; 10], "x"),
            Err(PcapError::Truncated { .. })
        ));
        let mut ng = vec![0x0a, 0x0d, 0x0d, 0x0a];
        ng.resize(40, 0);
        assert!(matches!(parse(&ng, "x"), Err(PcapError::Pcapng { .. })));
        let mut buf = Vec::new();
        write(&mut buf, [(0u64, &[1u8, 2, 3][..])]).unwrap();
        buf.pop();
        assert!(matches!(
            parse(&buf, "x"),
            Err(PcapError::Truncated { index: 0, .. })
        ));
    }
}
