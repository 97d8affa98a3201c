//! The line protocol between the kernel and its MPI engines: one JSON object per line
//! over TCP. Kernel to engine: `{"init": [lines]}`, `{"cell": code}`. Engine to kernel:
//! `{"hello": {...}}` once, then per cell `{"out": name, "text": t}`, `{"display": data}`
//! and finally `{"done": true}` or `{"failed": {...}}`. It only encodes and decodes; it
//! never decides what a message means.

use std::io::{BufRead, Write};

use serde_json::{json, Value};

use crate::local::{Failure, Out};

/// Writes one message as a line.
pub fn send(w: &mut impl Write, v: &Value) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(v)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// Reads one message; `Ok(None)` at the end of the stream.
pub fn recv(r: &mut impl BufRead) -> std::io::Result<Option<Value>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    serde_json::from_str(&line).map(Some).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("expected one JSON message per line, found {line:?}: {e}"),
        )
    })
}

pub fn out(o: &Out) -> Value {
    match o {
        Out::Stream { name, text } => json!({"out": name, "text": text}),
        Out::Display { data } => json!({"display": data}),
    }
}

pub fn failed(f: &Failure) -> Value {
    json!({"failed": {"ename": f.ename, "evalue": f.evalue, "traceback": f.traceback}})
}

/// What an engine said about a cell.
#[derive(Debug)]
pub enum Event {
    Out(Out),
    Done,
    Failed(Failure),
}

/// Decodes an engine's message about a cell.
pub fn event(v: &Value) -> Option<Event> {
    if let Some(name) = v["out"].as_str() {
        let text = v["text"].as_str().unwrap_or_default().to_string();
        return Some(Event::Out(Out::Stream {
            name: name.to_string(),
            text,
        }));
    }
    if let Some(data) = v["display"].as_object() {
        return Some(Event::Out(Out::Display { data: data.clone() }));
    }
    if v["done"].as_bool() == Some(true) {
        return Some(Event::Done);
    }
    let f = v.get("failed")?;
    let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
    Some(Event::Failed(Failure {
        ename: s("ename"),
        evalue: s("evalue"),
        traceback: f["traceback"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_survives_a_round_trip_through_a_line() {
        let mut buf = Vec::new();
        let stream = Out::Stream {
            name: "stdout".into(),
            text: "x = 1\n".into(),
        };
        send(&mut buf, &out(&stream)).unwrap();
        send(&mut buf, &failed(&Failure::new("panic", "boom\nat line 2"))).unwrap();
        send(&mut buf, &json!({"done": true})).unwrap();
        let mut r = std::io::BufReader::new(buf.as_slice());
        match event(&recv(&mut r).unwrap().unwrap()) {
            Some(Event::Out(Out::Stream { name, text })) => {
                assert_eq!((name.as_str(), text.as_str()), ("stdout", "x = 1\n"))
            }
            e => panic!("expected a stream, found {e:?}"),
        }
        match event(&recv(&mut r).unwrap().unwrap()) {
            Some(Event::Failed(f)) => {
                assert_eq!(f.ename, "panic");
                assert_eq!(f.traceback, vec!["boom", "at line 2"]);
            }
            e => panic!("expected a failure, found {e:?}"),
        }
        assert!(matches!(
            event(&recv(&mut r).unwrap().unwrap()),
            Some(Event::Done)
        ));
        assert!(recv(&mut r).unwrap().is_none());
        let mut bad = std::io::BufReader::new(&b"not json\n"[..]);
        assert!(recv(&mut bad).unwrap_err().to_string().contains("JSON"));
    }
}
