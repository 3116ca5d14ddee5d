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
    let mut out = Vec::new();
    walk(open(path)?, &path.display().to_string(), true, |r| {
        out.push(r)
    })?;
    Ok(out)
}

/// Counts the records of a pcap file, checking every header; frame data is
/// skipped, not read into memory, so a large capture costs no more than
/// its headers.
pub fn count(path: &Path) -> Result<usize, PcapError> {
    walk(open(path)?, &path.display().to_string(), false, |_| {})
}

/// Parses pcap bytes; `path` only labels errors.
pub fn parse(bytes: &[u8], path: &str) -> Result<Vec<Record>, PcapError> {
    let mut out = Vec::new();
    walk(bytes, path, true, |r| out.push(r))?;
    Ok(out)
}

fn open(path: &Path) -> Result<io::BufReader<std::fs::File>, PcapError> {
    std::fs::File::open(path)
        .map(io::BufReader::new)
        .map_err(|err| PcapError::Io {
            path: path.display().to_string(),
            err,
        })
}

/// Reads into `buf` until it is full or the input ends; returns how much
/// was read (a short count means end of input).
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Walks the records of a capture, checking the file header and every
/// record header, and hands each record to `f` (with its data if
/// `keep_data`, else with the data skipped). Returns the record count.
fn walk(
    mut r: impl Read,
    path: &str,
    keep_data: bool,
    mut f: impl FnMut(Record),
) -> Result<usize, PcapError> {
    let p = || path.to_owned();
    let io_err = |err| PcapError::Io { path: p(), err };
    let mut hdr = [0u8; 24];
    if fill(&mut r, &mut hdr).map_err(io_err)? < 24 {
        return Err(PcapError::Truncated {
            path: p(),
            index: 0,
        });
    }
    let magic_le = u32::from_le_bytes(hdr[0..4].try_into().unwrap());
    let magic_be = u32::from_be_bytes(hdr[0..4].try_into().unwrap());
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
    let snaplen = u32_at(&hdr, 16);
    let linktype = u32_at(&hdr, 20) & 0x0fff_ffff;
    if linktype != LINKTYPE_ETHERNET {
        return Err(PcapError::NotEthernet {
            path: p(),
            linktype,
        });
    }
    let mut index = 0;
    loop {
        let mut rec = [0u8; 16];
        match fill(&mut r, &mut rec).map_err(io_err)? {
            0 => return Ok(index),
            16 => {}
            _ => return Err(PcapError::Truncated { path: p(), index }),
        }
        let sec = u32_at(&rec, 0) as u64;
        let frac = u32_at(&rec, 4) as u64;
        let incl = u32_at(&rec, 8);
        let orig = u32_at(&rec, 12);
        if incl > snaplen.max(262_144) {
            return Err(PcapError::BadRecord {
                path: p(),
                index,
                len: incl,
            });
        }
        let data = if keep_data {
            let mut d = vec![0u8; incl as usize];
            if fill(&mut r, &mut d).map_err(io_err)? < d.len() {
                return Err(PcapError::Truncated { path: p(), index });
            }
            d
        } else {
            let skipped =
                io::copy(&mut (&mut r).take(incl as u64), &mut io::sink()).map_err(io_err)?;
            if skipped < incl as u64 {
                return Err(PcapError::Truncated { path: p(), index });
            }
            Vec::new()
        };
        f(Record {
            ts_us: sec * 1_000_000 + if nanos { frac / 1000 } else { frac },
            data,
            orig_len: orig,
        });
        index += 1;
    }
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
    fn count_streams_and_checks_like_read() {
        let dir = std::env::temp_dir().join(format!("dlvs-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.pcap");
        let frames: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 60 + i as usize]).collect();
        write_file(&path, frames.iter().map(|f| (0u64, f.as_slice()))).unwrap();
        assert_eq!(count(&path).unwrap(), 100);
        assert_eq!(read(&path).unwrap().len(), 100);
        // A capture cut inside its last frame is refused by both.
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 5).unwrap();
        assert!(matches!(
            count(&path),
            Err(PcapError::Truncated { index: 99, .. })
        ));
        assert!(matches!(
            read(&path),
            Err(PcapError::Truncated { index: 99, .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
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
