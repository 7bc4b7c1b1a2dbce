//! eitwatch's end-to-end tests (under `tests/`, against the real binaries and real peers)
//! and the simulated EIT area behind the demo ([`demo`]), with its simulated Modbus device
//! ([`simulate`]).

pub mod demo;
pub mod simulate;
