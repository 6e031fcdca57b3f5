//! Requests for the raw client to send, built field by field.
//!
//! `Req::get(url)` is `GET url HTTP/1.1` with a `Host` taken from the URL;
//! the builder methods change the version, the `Host`, the fields and the
//! body (with its `Content-Length`, or chunked). The bytes are exactly what
//! the test asked for, malformed if it asked for that.

/// The authority (`host:port`) of an `http://` URL.
pub fn authority_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

#[derive(Clone, Debug)]
enum ReqBody {
    Length(Vec<u8>),
    Chunked(Vec<Vec<u8>>),
}

/// A request to send, built field by field. `Req::get(url)` gives
/// `GET url HTTP/1.1` with a Host taken from the URL.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub target: String,
    version: String,
    host: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<ReqBody>,
}

impl Req {
    pub fn new(method: &str, target: &str) -> Req {
        Req {
            method: method.to_string(),
            target: target.to_string(),
            version: "HTTP/1.1".into(),
            host: authority_of(target).map(str::to_string),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(target: &str) -> Req {
        Req::new("GET", target)
    }

    /// `HTTP/1.0`, say.
    pub fn version(mut self, version: &str) -> Req {
        self.version = version.to_string();
        self
    }

    pub fn host(mut self, host: &str) -> Req {
        self.host = Some(host.to_string());
        self
    }

    pub fn no_host(mut self) -> Req {
        self.host = None;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// A body with its Content-Length (also for an empty body).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = Some(ReqBody::Length(body.into()));
        self
    }

    /// A chunked body, one chunk per element.
    pub fn chunked(mut self, chunks: Vec<Vec<u8>>) -> Req {
        self.body = Some(ReqBody::Chunked(chunks));
        self
    }

    /// The head: request line, Host, the fields, the framing field.
    pub fn head_bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} {}\r\n", self.method, self.target, self.version);
        if let Some(host) = &self.host {
            head.push_str(&format!("Host: {host}\r\n"));
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        match &self.body {
            Some(ReqBody::Length(body)) => {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()))
            }
            Some(ReqBody::Chunked(_)) => head.push_str("Transfer-Encoding: chunked\r\n"),
            None => {}
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// The body as it goes on the wire.
    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            None => Vec::new(),
            Some(ReqBody::Length(body)) => body.clone(),
            Some(ReqBody::Chunked(chunks)) => {
                let mut out = Vec::new();
                for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                out
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.head_bytes();
        out.extend_from_slice(&self.body_bytes());
        out
    }
}
