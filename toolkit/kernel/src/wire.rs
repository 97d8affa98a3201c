//! Jupyter's wire format (messaging protocol 5.3): a message is the routing identities,
//! the `<IDS|MSG>` delimiter, an HMAC-SHA256 signature of the four JSON parts (header,
//! parent header, metadata, content), then the parts. This module reads, checks and
//! builds such messages; it never touches a socket and never accepts a message whose
//! signature does not match the connection's key.

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const DELIMITER: &[u8] = b"<IDS|MSG>";
const PROTOCOL: &str = "5.3";

/// The connection's signing key (an empty key: no signatures, as Jupyter allows).
#[derive(Clone)]
pub struct Key(Option<Hmac<Sha256>>);

impl Key {
    pub fn new(key: &str) -> Result<Key, String> {
        if key.is_empty() {
            return Ok(Key(None));
        }
        Hmac::<Sha256>::new_from_slice(key.as_bytes())
            .map(|m| Key(Some(m)))
            .map_err(|e| format!("the connection file's key is not usable: {e}"))
    }

    /// Whether `signature` (hex) signs `parts`, compared in constant time.
    fn verify(&self, parts: &[&[u8]], signature: &[u8]) -> bool {
        match &self.0 {
            None => true,
            Some(mac) => {
                let Ok(bytes) = hex::decode(signature) else {
                    return false;
                };
                let mut mac = mac.clone();
                for p in parts {
                    mac.update(p);
                }
                mac.verify_slice(&bytes).is_ok()
            }
        }
    }

    fn sign(&self, parts: &[&[u8]]) -> String {
        match &self.0 {
            None => String::new(),
            Some(mac) => {
                let mut mac = mac.clone();
                for p in parts {
                    mac.update(p);
                }
                hex::encode(mac.finalize().into_bytes())
            }
        }
    }
}

/// One message, parsed.
#[derive(Clone, Debug)]
pub struct Message {
    pub identities: Vec<Bytes>,
    pub header: Value,
    pub parent: Value,
    pub metadata: Value,
    pub content: Value,
}

impl Message {
    /// Parses the frames received on a socket; an error says what did not fit.
    pub fn parse(frames: Vec<Bytes>, key: &Key) -> Result<Message, String> {
        let at = frames
            .iter()
            .position(|f| f.as_ref() == DELIMITER)
            .ok_or("expected a <IDS|MSG> delimiter in the message, found none")?;
        if frames.len() < at + 6 {
            return Err(format!(
                "expected a signature and 4 JSON parts after the delimiter, found {}",
                frames.len() - at - 1
            ));
        }
        let parts: Vec<&[u8]> = frames[at + 2..at + 6].iter().map(|f| f.as_ref()).collect();
        if !key.verify(&parts, frames[at + 1].as_ref()) {
            return Err("the message's signature does not match the connection's key".into());
        }
        let json = |i: usize| -> Result<Value, String> {
            serde_json::from_slice(parts[i]).map_err(|e| format!("a message part is not JSON: {e}"))
        };
        Ok(Message {
            identities: frames[..at].to_vec(),
            header: json(0)?,
            parent: json(1)?,
            metadata: json(2)?,
            content: json(3)?,
        })
    }

    pub fn msg_type(&self) -> &str {
        self.header["msg_type"].as_str().unwrap_or("")
    }

    /// A new message of `msg_type` in reply to (or caused by) this one.
    pub fn child(&self, msg_type: &str, content: Value) -> Message {
        Message {
            identities: self.identities.clone(),
            header: header(msg_type, &self.header["session"]),
            parent: self.header.clone(),
            metadata: json!({}),
            content,
        }
    }

    /// The frames to send, signed with `key`.
    pub fn frames(&self, key: &Key) -> Vec<Bytes> {
        let parts: Vec<Vec<u8>> = [&self.header, &self.parent, &self.metadata, &self.content]
            .iter()
            .map(|v| serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec()))
            .collect();
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        let signature = key.sign(&refs);
        let mut frames = self.identities.clone();
        frames.push(Bytes::from_static(DELIMITER));
        frames.push(Bytes::from(signature));
        frames.extend(parts.into_iter().map(Bytes::from));
        frames
    }
}

fn header(msg_type: &str, session: &Value) -> Value {
    json!({
        "msg_id": uuid::Uuid::new_v4().to_string(),
        "session": session,
        "username": "fogkit",
        "date": now_iso8601(),
        "msg_type": msg_type,
        "version": PROTOCOL,
    })
}

/// The current UTC time as ISO 8601 with microseconds (what Jupyter's `date` field holds).
fn now_iso8601() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (days, secs) = ((d.as_secs() / 86_400) as i64, d.as_secs() % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &Key) -> Vec<Bytes> {
        let m = Message {
            identities: vec![Bytes::from_static(b"client")],
            header: header("kernel_info_request", &json!("s1")),
            parent: json!({}),
            metadata: json!({}),
            content: json!({}),
        };
        m.frames(key)
    }

    #[test]
    fn a_signed_message_parses_back_and_a_tampered_one_is_refused() {
        let key = Key::new("secret").unwrap();
        let m = Message::parse(request(&key), &key).unwrap();
        assert_eq!(m.msg_type(), "kernel_info_request");
        assert_eq!(m.identities, vec![Bytes::from_static(b"client")]);
        let reply = m.child("kernel_info_reply", json!({"status": "ok"}));
        assert_eq!(reply.parent["msg_type"], "kernel_info_request");
        assert_eq!(reply.header["session"], "s1");

        let mut frames = request(&key);
        let last = frames.len() - 1;
        frames[last] = Bytes::from_static(b"{\"x\":1}");
        let err = Message::parse(frames, &key).unwrap_err();
        assert!(err.contains("signature"), "{err}");
        let other = Key::new("other").unwrap();
        assert!(Message::parse(request(&key), &other).is_err());
        assert!(Message::parse(vec![Bytes::from_static(b"x")], &key)
            .unwrap_err()
            .contains("delimiter"));
    }

    #[test]
    fn dates_are_iso_8601() {
        let d = now_iso8601();
        assert_eq!(d.len(), 27, "{d}");
        assert!(
            d.starts_with("20") && d.ends_with('Z') && &d[10..11] == "T",
            "{d}"
        );
    }
}
