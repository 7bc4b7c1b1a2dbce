//! eitwatch's end-to-end tests (under `tests/`, against the real binaries and real peers)
//! and the simulated EIT area behind the demo ([`demo`]).

pub mod demo;
