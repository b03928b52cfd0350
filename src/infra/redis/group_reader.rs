//! The consumer's `XREADGROUP` connection ([`GroupReader`]).
//!
//! On one Redis (not a Cluster) the reader is a connection of its own that speaks RESP2 and
//! decodes the reply of `XREADGROUP` straight into [`StreamEntry`]s, one pass over the bytes
//! read. The redis crate first builds a tree of `Value`s with a parser-combinator, then each
//! entry is taken out of it: in a profile of a consumer draining a backlog that was about half
//! of the consumer's CPU (docs/PERFORMANCE.md, "The stream runtime beside its peers"). Every
//! other command, and every command on a Cluster, goes through the redis crate.
//!
//! One command at a time is in flight on the connection. A call that fails or is dropped half
//! way leaves the connection closed; the next call opens a new one.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::{ConnectionAddr, ConnectionInfo, ErrorKind, RedisError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

use super::connection::DedicatedConnection;
use super::reply::StreamEntry;
use super::streams;

/// Nested arrays deeper than this are refused (an `XREADGROUP` reply is four deep).
const MAX_DEPTH: usize = 8;
/// What one socket read asks for at least (a batch of 500 small entries is ~90 KiB).
const READ_CHUNK: usize = 64 * 1024;

/// Where a consumer reads new entries: the lean connection on one Redis, the redis crate's
/// on a Cluster. A clone shares the connection.
#[derive(Clone)]
pub enum GroupReader {
    Lean(LeanReader),
    Client(DedicatedConnection),
}

impl GroupReader {
    /// `XREADGROUP GROUP group consumer COUNT count [BLOCK ms] STREAMS key >`: up to `count`
    /// entries never delivered to the group, now delivered to `consumer`.
    pub async fn read_group(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
    ) -> anyhow::Result<Vec<StreamEntry>> {
        match self {
            Self::Lean(lean) => lean.read_group(key, group, consumer, count, block).await,
            Self::Client(conn) => streams::read_group(conn, key, group, consumer, count, block).await,
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A RESP2 connection for `XREADGROUP` alone (see the module's text).
#[derive(Clone)]
pub struct LeanReader(Arc<Mutex<Lean>>);

struct Lean {
    info: ConnectionInfo,
    timeout: Duration,
    /// `None` until the first call, and after a call that did not complete.
    io: Option<Box<dyn Io>>,
    /// Bytes read and not yet decoded.
    input: Vec<u8>,
}

impl LeanReader {
    /// A reader for `info` (TCP or a Unix socket), or `None` for an address it does not speak
    /// (TLS): the caller uses the redis crate's connection then. Connects on first use, each
    /// exchange within `timeout` plus the command's block time.
    pub fn new(info: &ConnectionInfo, timeout: Duration) -> Option<Self> {
        match info.addr {
            ConnectionAddr::Tcp(..) | ConnectionAddr::Unix(..) => Some(Self(Arc::new(Mutex::new(Lean {
                info: info.clone(),
                timeout,
                io: None,
                input: Vec::with_capacity(READ_CHUNK),
            })))),
            _ => None,
        }
    }

    pub async fn read_group(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
    ) -> anyhow::Result<Vec<StreamEntry>> {
        let mut lean = self.0.lock().await;
        let command = streams::read_group_cmd(key, group, consumer, count, block).get_packed_command();
        let within = lean.timeout + block.unwrap_or_default();
        let len = tokio::time::timeout(within, lean.exchange(&command))
            .await
            .context("XREADGROUP timed out")?
            .context("XREADGROUP")?;
        let entries = decode_read_group(&lean.input[..len]).context("XREADGROUP");
        lean.input.drain(..len);
        entries
    }
}

impl Lean {
    /// Sends one command and reads its whole reply into `input`; returns the reply's length.
    /// The connection is put back only when the exchange completed.
    async fn exchange(&mut self, command: &[u8]) -> Result<usize, RedisError> {
        let mut io = match self.io.take() {
            Some(io) => io,
            None => {
                self.input.clear();
                self.connect().await?
            }
        };
        io.write_all(command).await?;
        let len = read_reply(&mut io, &mut self.input).await?;
        self.io = Some(io);
        Ok(len)
    }

    async fn connect(&mut self) -> Result<Box<dyn Io>, RedisError> {
        let mut io: Box<dyn Io> = match &self.info.addr {
            ConnectionAddr::Tcp(host, port) => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                stream.set_nodelay(true)?;
                Box::new(stream)
            }
            ConnectionAddr::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            _ => {
                return Err((
                    ErrorKind::InvalidClientConfig,
                    "the lean reader speaks TCP and Unix sockets",
                )
                    .into());
            }
        };
        let redis = self.info.redis.clone();
        if let Some(password) = &redis.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = &redis.username {
                auth.arg(user);
            }
            self.simple_command(&mut io, auth.arg(password)).await?;
        }
        if redis.db != 0 {
            self.simple_command(&mut io, redis::cmd("SELECT").arg(redis.db)).await?;
        }
        Ok(io)
    }

    /// A command whose reply only matters as success or error (AUTH, SELECT).
    async fn simple_command(&mut self, io: &mut Box<dyn Io>, command: &redis::Cmd) -> Result<(), RedisError> {
        io.write_all(&command.get_packed_command()).await?;
        let len = read_reply(io, &mut self.input).await?;
        let reply = redis::parse_redis_value(&self.input[..len]);
        self.input.drain(..len);
        reply?.extract_error().map(drop)
    }
}

/// Reads until `input` holds one whole reply; returns its length.
async fn read_reply(io: &mut Box<dyn Io>, input: &mut Vec<u8>) -> Result<usize, RedisError> {
    loop {
        if let Some(len) = reply_len(input, 0, 0)? {
            return Ok(len);
        }
        input.reserve(READ_CHUNK);
        if io.read_buf(input).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
}

fn malformed(what: &'static str) -> RedisError {
    (ErrorKind::ParseError, "malformed reply from Redis", what.to_owned()).into()
}

/// The line at `at` (without its CRLF) and where the next one starts; `None`: not all read yet.
fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], at + end + 2))
}

/// A length or integer of a header: decimal digits, `-1` for nil.
fn number(digits: &[u8]) -> Result<i64, RedisError> {
    let not_a_number = || malformed("a length or integer that is not a number");
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 18 {
        return Err(not_a_number());
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(not_a_number());
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Ok(if negative { -n } else { n })
}

/// Where the RESP2 value starting at `at` ends, if it has been read whole.
fn reply_len(buf: &[u8], at: usize, depth: usize) -> Result<Option<usize>, RedisError> {
    if depth > MAX_DEPTH {
        return Err(malformed("arrays nested too deep"));
    }
    let Some((header, mut next)) = line(buf, at) else {
        return Ok(None);
    };
    let (&kind, rest) = header.split_first().ok_or_else(|| malformed("an empty line"))?;
    match kind {
        b'+' | b'-' | b':' => Ok(Some(next)),
        b'$' => match number(rest)? {
            -1 => Ok(Some(next)),
            n if n >= 0 => {
                let end = next + n as usize + 2;
                Ok((buf.len() >= end).then_some(end))
            }
            _ => Err(malformed("a negative bulk length")),
        },
        b'*' => {
            let n = number(rest)?;
            for _ in 0..n.max(0) {
                match reply_len(buf, next, depth + 1)? {
                    Some(end) => next = end,
                    None => return Ok(None),
                }
            }
            Ok(Some(next))
        }
        _ => Err(malformed("a RESP2 type it does not know")),
    }
}

/// A cursor over one whole reply (checked by [`reply_len`]).
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn header(&mut self, kind: u8) -> Result<i64, RedisError> {
        let (header, next) = line(self.buf, self.at).ok_or_else(|| malformed("a reply cut short"))?;
        match header.split_first() {
            Some((&k, digits)) if k == kind => {
                self.at = next;
                number(digits)
            }
            _ => Err(malformed("an XREADGROUP reply of another shape")),
        }
    }

    /// An array's length; `None` for a nil array.
    fn array(&mut self) -> Result<Option<usize>, RedisError> {
        let n = self.header(b'*')?;
        Ok(usize::try_from(n).ok())
    }

    fn bulk(&mut self) -> Result<&'a [u8], RedisError> {
        let n = usize::try_from(self.header(b'$')?).map_err(|_| malformed("a nil where a string belongs"))?;
        let bytes = self
            .buf
            .get(self.at..self.at + n)
            .ok_or_else(|| malformed("a reply cut short"))?;
        self.at += n + 2;
        Ok(bytes)
    }

    /// A bulk string as text (invalid UTF-8 replaced, as the redis crate's reading does).
    fn text(&mut self) -> Result<String, RedisError> {
        let bytes = self.bulk()?;
        Ok(match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(bytes).into_owned(),
        })
    }
}

/// An `XREADGROUP` reply, `[[key, [[id, [field, value, …]], …]], …]` (RESP2), as entries; a
/// nil (nothing new within the block time) is none; an error reply is that error, as the
/// redis crate would have made it (`NOGROUP` keeps its code).
fn decode_read_group(reply: &[u8]) -> Result<Vec<StreamEntry>, RedisError> {
    if reply.first() == Some(&b'-') {
        return redis::parse_redis_value(reply)?.extract_error().map(|_| Vec::new());
    }
    let mut cursor = Cursor { buf: reply, at: 0 };
    let Some(streams) = cursor.array()? else {
        return Ok(Vec::new());
    };
    let mut entries = Vec::new();
    for _ in 0..streams {
        if cursor.array()? != Some(2) {
            return Err(malformed("a stream that is not [key, entries]"));
        }
        cursor.bulk()?;
        let n = cursor.array()?.unwrap_or(0);
        entries.reserve(n);
        for _ in 0..n {
            if cursor.array()? != Some(2) {
                return Err(malformed("an entry that is not [id, fields]"));
            }
            let id = cursor.text()?;
            let flat = cursor.array()?.unwrap_or(0);
            let mut fields = Vec::with_capacity(flat / 2);
            for _ in 0..flat / 2 {
                fields.push((cursor.text()?, cursor.text()?));
            }
            if flat % 2 == 1 {
                cursor.bulk()?;
            }
            entries.push(StreamEntry { id, fields });
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, fields: &[(&str, &str)]) -> StreamEntry {
        StreamEntry {
            id: id.to_owned(),
            fields: fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    const TWO: &[u8] = b"*1\r\n*2\r\n$1\r\nk\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$1\r\na\r\n$2\r\nv1\r\n$1\r\nb\r\n$0\r\n\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\na\r\n$6\r\n\r\nx\r\ny\r\n";

    #[test]
    fn a_reply_decodes_into_entries_and_agrees_with_the_redis_crate() {
        assert_eq!(reply_len(TWO, 0, 0).unwrap(), Some(TWO.len()));
        let lean = decode_read_group(TWO).unwrap();
        assert_eq!(
            lean,
            vec![
                entry("1-0", &[("a", "v1"), ("b", "")]),
                entry("2-0", &[("a", "\r\nx\r\ny")])
            ],
            "a value may hold CRLF"
        );
        let value = redis::parse_redis_value(TWO).unwrap();
        let super::super::reply::ReadEntries(by_crate) = redis::from_owned_redis_value(value).unwrap();
        assert_eq!(lean, by_crate);
    }

    #[test]
    fn every_cut_of_a_reply_is_incomplete_and_not_an_error() {
        for cut in 0..TWO.len() {
            assert_eq!(reply_len(&TWO[..cut], 0, 0).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn nil_is_no_entries_and_an_error_keeps_its_code() {
        assert_eq!(decode_read_group(b"*-1\r\n").unwrap(), Vec::new());
        let err = decode_read_group(b"-NOGROUP No such key 'k' or consumer group 'g'\r\n").unwrap_err();
        assert_eq!(err.code(), Some("NOGROUP"));
    }

    #[test]
    fn garbage_is_a_parse_error_not_a_panic() {
        for bad in [
            &b"?\r\n"[..],
            b"*1\r\n$1\r\nk\r\n",
            b"*1\r\n*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$-1\r\n*0\r\n",
            b"$-5\r\n",
            b"*x\r\n",
        ] {
            let complete = reply_len(bad, 0, 0);
            if let Ok(Some(len)) = complete {
                assert!(decode_read_group(&bad[..len]).is_err(), "{bad:?}");
            }
        }
        for bad in ["$1x\r\n", "$\r\n", "*--1\r\n", "$9999999999999999999\r\n"] {
            assert!(reply_len(bad.as_bytes(), 0, 0).is_err(), "{bad:?}");
        }
        assert_eq!(number(b"-1").unwrap(), -1);
        assert_eq!(number(b"500").unwrap(), 500);
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2);
        assert!(reply_len(deep.as_bytes(), 0, 0).is_err());
    }
}
