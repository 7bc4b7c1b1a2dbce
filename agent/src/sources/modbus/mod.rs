//! Modbus devices (TCP, RTU over TCP, RTU over a serial line), polled.
//!
//! One `[[modbus]]` is one connection and one task: its requests go one at a time, as a
//! shared RS-485 bus needs, and a slow or dead device never holds up another `[[modbus]]`.
//! Each poll sends the requests [`plan`] made (near registers of one slave and table in one
//! request, so its values share one timestamp) and finishes only once its readings are
//! safe in the outbox.
//!
//! Error policy — the three failures are kept apart, because they mean different things:
//! - **Timeout** (a slave does not answer): logged when the slave falls silent and again
//!   when it answers, never per poll. The connection is dropped (it may hold half a late
//!   answer) and reopened at once for the next slave; the silent slave is skipped until its
//!   own backoff (0.5 s doubling to 30 s, with jitter) expires. So a dead slave costs the
//!   others at most one timeout per backoff period, and never their interval.
//! - **Link failure** (connection refused or reset, port gone, garbled frame): the
//!   connection is dropped and reopened after the device's backoff (same schedule).
//! - **Modbus exception** (illegal address, device busy): the slave is alive but refuses the
//!   request. Logged once, naming device, slave, table and addresses, until that request
//!   succeeds again; the values of that request are delivered with quality `invalid`
//!   (value 0), so the record shows a device fault rather than silence.
//!
//! Staleness: a value is delivered only when it was read in this poll, stamped with the
//! time its request was answered. A value that could not be refreshed (slave silent, link
//! down) is not delivered at all: repeating the last value would fabricate measurements,
//! and the server's no-data rule already judges silence, which is what it is.

pub mod client;
pub mod decode;
pub mod plan;
pub mod probe;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use eitwatch_config::agent_config::{ModbusDevice, ModbusTransport, Register};
use eitwatch_config::reading::Quality;
use tokio::time::Instant;

use self::client::{Connection, ReadError};
use self::plan::{Block, Limits, Span};
use super::Context;
use crate::backoff::Backoff;
use crate::normalise::Raw;

/// The requests a device's register map needs, in the order one poll sends them.
pub fn plan_device(device: &ModbusDevice) -> Vec<Block> {
    let spans: Vec<Span> = device
        .register
        .iter()
        .map(|reg| Span {
            slave: reg.slave,
            table: reg.table,
            address: device.protocol_address(reg),
            width: if reg.table.is_bits() { 1 } else { reg.kind.registers() },
        })
        .collect();
    let limits = Limits {
        max_registers: device.max_registers_per_request,
        max_bits: device.max_bits_per_request,
        max_gap_registers: device.max_gap_registers,
        max_gap_bits: device.max_gap_bits,
    };
    plan::plan(&spans, &limits)
}

/// The value of one register map entry, from the words of the block that carries it.
fn value_of(device: &ModbusDevice, reg: &Register, block: &Block, words: &[u16]) -> Option<f64> {
    let offset = usize::from(device.protocol_address(reg).checked_sub(block.start)?);
    let bit = if reg.table.is_bits() { None } else { reg.bit };
    decode::decode(words.get(offset..)?, reg.kind, reg.order, bit).map(|v| v * reg.scale + reg.offset)
}

#[derive(Debug)]
struct SlaveState {
    backoff: Backoff,
    /// Set while the slave is silent: it is not asked again before this instant.
    retry_at: Option<Instant>,
}

/// One device's polling state.
#[derive(Debug)]
struct Poller {
    device: ModbusDevice,
    blocks: Vec<Block>,
    timeout: Duration,
    connection: Option<Connection>,
    link_backoff: Backoff,
    /// Set while the link is down: no connect attempt before this instant.
    link_retry_at: Option<Instant>,
    slaves: BTreeMap<u8, SlaveState>,
    /// Requests (indices into `blocks`) whose exception has been logged, until they succeed.
    refused: HashSet<usize>,
    /// Silence kept on a serial bus between an answer and the next request (3.5 characters).
    inter_frame: Duration,
}

/// The silent interval RTU puts between frames: 3.5 characters of 11 bits, and 1.75 ms above
/// 19 200 baud (Modbus over Serial Line, 2.5.1.1). Without it a slow device may take the next
/// request for the tail of the last frame.
pub fn inter_frame_gap(transport: &ModbusTransport) -> Duration {
    match transport {
        ModbusTransport::Rtu { baud, .. } if *baud > 19_200 => Duration::from_micros(1750),
        ModbusTransport::Rtu { baud, .. } => Duration::from_secs_f64(3.5 * 11.0 / f64::from((*baud).max(1))),
        _ => Duration::ZERO,
    }
}

impl Poller {
    fn new(device: ModbusDevice) -> Poller {
        let blocks = plan_device(&device);
        let slaves = blocks.iter().map(|b| (b.slave, SlaveState { backoff: Backoff::new(), retry_at: None })).collect();
        Poller {
            inter_frame: inter_frame_gap(&device.transport),
            timeout: Duration::from_millis(device.timeout_ms),
            device,
            blocks,
            connection: None,
            link_backoff: Backoff::new(),
            link_retry_at: None,
            slaves,
            refused: HashSet::new(),
        }
    }

    /// The open connection, opening one unless the link's backoff forbids it yet.
    async fn connection(&mut self) -> Option<&mut Connection> {
        if self.connection.is_none() {
            if self.link_retry_at.is_some_and(|at| Instant::now() < at) {
                return None;
            }
            match client::connect(&self.device.transport, self.timeout).await {
                Ok(c) => {
                    if self.link_retry_at.take().is_some() {
                        tracing::info!(device = %self.device.name, endpoint = self.device.transport.endpoint(), "Modbus link up again");
                    }
                    self.link_backoff.reset();
                    self.connection = Some(c);
                }
                Err(error) => {
                    let delay = self.link_backoff.next();
                    self.link_retry_at = Some(Instant::now() + delay);
                    tracing::warn!(device = %self.device.name, %error, retry_in_ms = delay.as_millis() as u64, "Modbus connect failed");
                    return None;
                }
            }
        }
        self.connection.as_mut()
    }

    /// One poll: every request once, skipping silent slaves whose backoff has not expired.
    async fn poll(&mut self) -> Vec<Raw> {
        let mut raws = Vec::with_capacity(self.device.register.len());
        for b in 0..self.blocks.len() {
            let (slave, table, start, count) =
                (self.blocks[b].slave, self.blocks[b].table, self.blocks[b].start, self.blocks[b].count);
            if self.slaves.get(&slave).and_then(|s| s.retry_at).is_some_and(|at| Instant::now() < at) {
                continue;
            }
            let timeout = self.timeout;
            let Some(connection) = self.connection().await else {
                break;
            };
            let result = connection.read(slave, table, start, count, timeout).await;
            let time_ns = crate::now_ns();
            if !self.inter_frame.is_zero() {
                tokio::time::sleep(self.inter_frame).await;
            }
            let device = self.device.name.clone();
            let device = device.as_str();
            // Addresses in logs count as the config does, so they can be found in it.
            let first = u32::from(start) + u32::from(self.device.address_base);
            let last = first + u32::from(count) - 1;
            match result {
                Ok(words) => {
                    self.answered(slave);
                    if self.refused.remove(&b) {
                        tracing::info!(
                            device = %device,
                            slave,
                            table = %table.as_str(),
                            first,
                            last,
                            "Modbus request accepted again"
                        );
                    }
                    let block = &self.blocks[b];
                    for &i in &block.members {
                        let reg = &self.device.register[i];
                        if let Some(value) = value_of(&self.device, reg, block, &words) {
                            raws.push(raw(reg, value, time_ns, Quality::Valid));
                        }
                    }
                }
                Err(ReadError::Exception { code, number }) => {
                    self.answered(slave);
                    if self.refused.insert(b) {
                        let parameters: Vec<&str> = self.blocks[b]
                            .members
                            .iter()
                            .map(|&i| self.device.register[i].parameter.as_str())
                            .collect();
                        let hint = match number {
                            1..=3 => {
                                "the device does not map these: check table, address, address_base and max_gap_registers"
                            }
                            _ => "the device reports a fault or is busy",
                        };
                        tracing::error!(device = %device, slave, table = %table.as_str(), first, last, exception = ?code, code = number, ?parameters, hint, "Modbus exception; values marked invalid");
                    }
                    for &i in &self.blocks[b].members {
                        raws.push(raw(&self.device.register[i], 0.0, time_ns, Quality::Invalid));
                    }
                }
                Err(ReadError::Timeout { timeout_ms }) => {
                    // Half a late answer may follow on this connection: start afresh.
                    if let Some(c) = self.connection.take() {
                        c.close().await;
                    }
                    if let Some(s) = self.slaves.get_mut(&slave) {
                        let delay = s.backoff.next();
                        if s.retry_at.replace(Instant::now() + delay).is_none() {
                            tracing::warn!(device = %self.device.name, slave, table = %table.as_str(), first, last, timeout_ms, retry_in_ms = delay.as_millis() as u64, "Modbus slave does not answer; its values are not delivered until it does");
                        } else {
                            tracing::debug!(device = %self.device.name, slave, retry_in_ms = delay.as_millis() as u64, "Modbus slave still silent");
                        }
                    }
                }
                Err(ReadError::Link(error)) => {
                    self.connection = None;
                    let delay = self.link_backoff.next();
                    self.link_retry_at = Some(Instant::now() + delay);
                    tracing::warn!(device = %self.device.name, endpoint = self.device.transport.endpoint(), slave, %error, retry_in_ms = delay.as_millis() as u64, "Modbus link lost");
                    break;
                }
            }
        }
        raws
    }

    fn answered(&mut self, slave: u8) {
        if let Some(s) = self.slaves.get_mut(&slave) {
            if s.retry_at.take().is_some() {
                tracing::info!(device = %self.device.name, slave, "Modbus slave answers again");
            }
            s.backoff.reset();
        }
    }
}

fn raw(reg: &Register, value: f64, time_ns: i64, quality: Quality) -> Raw {
    Raw { point: reg.point.clone(), parameter: reg.parameter.clone(), value, unit: reg.unit.clone(), time_ns, quality }
}

/// Polls one device until shutdown; an error if it stops with a poll's readings not kept.
pub async fn run(device: ModbusDevice, ctx: Context) -> Result<(), super::NotKept> {
    let mut interval = tokio::time::interval(Duration::from_millis(device.poll_interval_ms));
    // A poll that overran (a slow bus) is not followed by a burst of catch-up polls.
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut poller = Poller::new(device);
    tracing::info!(
        device = %poller.device.name,
        endpoint = poller.device.transport.endpoint(),
        registers = poller.device.register.len(),
        requests = poller.blocks.len(),
        "Modbus device polled"
    );
    let result = loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break Ok(()),
            _ = interval.tick() => {}
        }
        let raws = tokio::select! {
            _ = ctx.shutdown.cancelled() => break Ok(()),
            raws = poller.poll() => raws,
        };
        // The poll is over only once its readings are durable.
        if !raws.is_empty()
            && let Err(not_kept) = ctx.deliver(&poller.device.name, raws).await
        {
            break Err(not_kept);
        }
    };
    if let Some(c) = poller.connection.take() {
        c.close().await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use eitwatch_config::agent_config::RegisterTable;

    fn device(toml: &str) -> ModbusDevice {
        toml::from_str(toml).expect("device")
    }

    #[test]
    fn serial_buses_keep_the_rtu_silent_interval() {
        let rtu = |baud| ModbusTransport::Rtu {
            port: "/dev/ttyS0".into(),
            baud,
            data_bits: 8,
            parity: eitwatch_config::agent_config::Parity::Even,
            stop_bits: 1,
        };
        assert_eq!(inter_frame_gap(&rtu(9600)), Duration::from_secs_f64(38.5 / 9600.0)); // ≈ 4.01 ms
        assert_eq!(inter_frame_gap(&rtu(115_200)), Duration::from_micros(1750));
        assert_eq!(inter_frame_gap(&ModbusTransport::Tcp { address: "h:502".into() }), Duration::ZERO);
    }

    #[test]
    fn one_based_addresses_bits_and_coils_plan_and_decode() {
        let d = device(
            r#"
name = "d"
transport = { type = "rtu", port = "/dev/ttyUSB0" }
address_base = 1
register = [
  { point = "o", parameter = "cod", table = "holding", address = 1, type = "f32", order = "CDAB", unit = "mg/L", scale = 2.0, offset = 1.0 },
  { point = "o", parameter = "zn", table = "holding", address = 3, type = "bit", bit = 15, unit = "mg/L" },
  { point = "o", parameter = "cd", table = "coil", address = 10, type = "bit", unit = "mg/L" },
  { point = "o", parameter = "cu", table = "coil", address = 12, type = "bit", unit = "mg/L" },
]
"#,
        );
        let blocks = plan_device(&d);
        assert_eq!(
            blocks,
            vec![
                Block { slave: 1, table: RegisterTable::Holding, start: 0, count: 3, members: vec![0, 1] },
                Block { slave: 1, table: RegisterTable::Coil, start: 9, count: 3, members: vec![2, 3] },
            ]
        );
        // 85.25 = 0x42AA8000, words swapped; then 0x8000 (bit 15 set).
        let words = [0x8000, 0x42AA, 0x8000];
        assert_eq!(value_of(&d, &d.register[0], &blocks[0], &words), Some(85.25 * 2.0 + 1.0));
        assert_eq!(value_of(&d, &d.register[1], &blocks[0], &words), Some(1.0));
        let bits = [1, 0, 0];
        assert_eq!(value_of(&d, &d.register[2], &blocks[1], &bits), Some(1.0));
        assert_eq!(value_of(&d, &d.register[3], &blocks[1], &bits), Some(0.0));
        assert_eq!(value_of(&d, &d.register[3], &blocks[1], &bits[..2]), None, "a short answer yields nothing");
    }
}
