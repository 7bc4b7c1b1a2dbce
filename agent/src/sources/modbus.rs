//! Modbus TCP devices, polled.
//!
//! Every call has a timeout (the async client can otherwise hang). A transport error or
//! timeout drops the connection and reconnects with backoff; a Modbus exception (illegal
//! address, device busy) is a configuration or device problem: logged once per register,
//! and the poll goes on with the other registers.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use eitwatch_config::agent_config::{ByteOrder, ModbusDevice, ModbusTransport, Register, RegisterTable, RegisterType};
use eitwatch_config::reading::Quality;
use tokio_modbus::client::{Context as ModbusContext, Reader, tcp};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode, Slave};

use super::{Backoff, Context};
use crate::normalise::Raw;

/// Decodes a value from its registers (as read, in wire order) by type and byte order.
/// `bit` picks a bit of a single register for `RegisterType::Bit`.
pub fn decode(words: &[u16], kind: RegisterType, order: ByteOrder, bit: Option<u8>) -> Option<f64> {
    let n = kind.registers() as usize;
    let words = words.get(..n)?;
    // Put the bytes in big-endian (ABCD…) order, whatever order they came in.
    let mut ordered: Vec<u16> = words.to_vec();
    if matches!(order, ByteOrder::CDAB | ByteOrder::DCBA) {
        ordered.reverse();
    }
    if matches!(order, ByteOrder::BADC | ByteOrder::DCBA) {
        ordered.iter_mut().for_each(|w| *w = w.swap_bytes());
    }
    let bytes: Vec<u8> = ordered.iter().flat_map(|w| w.to_be_bytes()).collect();
    let b2 = || <[u8; 2]>::try_from(&bytes[..2]).ok();
    let b4 = || <[u8; 4]>::try_from(&bytes[..4]).ok();
    let b8 = || <[u8; 8]>::try_from(&bytes[..8]).ok();
    Some(match kind {
        RegisterType::U16 => u16::from_be_bytes(b2()?) as f64,
        RegisterType::I16 => i16::from_be_bytes(b2()?) as f64,
        RegisterType::U32 => u32::from_be_bytes(b4()?) as f64,
        RegisterType::I32 => i32::from_be_bytes(b4()?) as f64,
        RegisterType::U64 => u64::from_be_bytes(b8()?) as f64,
        RegisterType::I64 => i64::from_be_bytes(b8()?) as f64,
        RegisterType::F32 => f32::from_be_bytes(b4()?) as f64,
        RegisterType::F64 => f64::from_be_bytes(b8()?),
        RegisterType::Bit => ((words[0] >> bit.unwrap_or(0)) & 1) as f64,
    })
}

enum ReadError {
    /// The link failed or timed out: reconnect.
    Link(String),
    /// The device refused this request.
    Exception(ExceptionCode),
}

async fn read(ctx: &mut ModbusContext, reg: &Register, timeout: Duration) -> Result<Vec<u16>, ReadError> {
    ctx.set_slave(Slave(reg.slave));
    let count = reg.kind.registers();
    let call = async {
        match reg.table {
            RegisterTable::Holding => ctx.read_holding_registers(reg.address, count).await,
            RegisterTable::Input => ctx.read_input_registers(reg.address, count).await,
            RegisterTable::Coil => {
                ctx.read_coils(reg.address, 1).await.map(|r| r.map(|b| b.iter().map(|&b| b as u16).collect()))
            }
            RegisterTable::Discrete => {
                ctx.read_discrete_inputs(reg.address, 1).await.map(|r| r.map(|b| b.iter().map(|&b| b as u16).collect()))
            }
        }
    };
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Err(ReadError::Link(format!("no answer within {} ms", timeout.as_millis()))),
        Ok(Err(e)) => Err(ReadError::Link(e.to_string())),
        Ok(Ok(Err(code))) => Err(ReadError::Exception(code)),
        Ok(Ok(Ok(words))) => Ok(words),
    }
}

/// Polls one device until shutdown.
pub async fn run(device: ModbusDevice, ctx: Context) {
    let ModbusTransport::Tcp { address } = &device.transport;
    let timeout = Duration::from_millis(device.timeout_ms);
    let mut interval = tokio::time::interval(Duration::from_millis(device.poll_interval_ms));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Backoff::new();
    let mut reported: HashSet<(u8, u16)> = HashSet::new();
    let mut connection: Option<ModbusContext> = None;
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let modbus = match connection.as_mut() {
            Some(c) => c,
            None => match connect(address, timeout).await {
                Ok(c) => {
                    tracing::info!(device = %device.name, %address, "Modbus device connected");
                    backoff.reset();
                    connection.insert(c)
                }
                Err(error) => {
                    let delay = backoff.next();
                    tracing::warn!(device = %device.name, %address, %error, retry_in_ms = delay.as_millis() as u64, "Modbus connect failed");
                    tokio::select! { _ = ctx.shutdown.cancelled() => return, _ = tokio::time::sleep(delay) => {} }
                    continue;
                }
            },
        };
        let time_ns = crate::now_ns();
        let mut raws = Vec::with_capacity(device.register.len());
        let mut link_lost = None;
        for reg in &device.register {
            match read(modbus, reg, timeout).await {
                Ok(words) => {
                    reported.remove(&(reg.slave, reg.address));
                    if let Some(v) = decode(&words, reg.kind, reg.order, reg.bit) {
                        raws.push(Raw {
                            point: reg.point.clone(),
                            parameter: reg.parameter.clone(),
                            value: v * reg.scale + reg.offset,
                            unit: reg.unit.clone(),
                            time_ns,
                            quality: Quality::Valid,
                        });
                    }
                }
                Err(ReadError::Exception(code)) => {
                    if reported.insert((reg.slave, reg.address)) {
                        tracing::error!(device = %device.name, slave = reg.slave, register = reg.address, parameter = %reg.parameter, exception = ?code, "Modbus exception: check the register map");
                    }
                }
                Err(ReadError::Link(error)) => {
                    link_lost = Some(error);
                    break;
                }
            }
        }
        ctx.deliver(&device.name, raws).await;
        if let Some(error) = link_lost {
            tracing::warn!(device = %device.name, %address, %error, "Modbus link lost; reconnecting");
            connection = None;
        }
    }
}

async fn connect(address: &str, timeout: Duration) -> Result<ModbusContext, String> {
    let addr: SocketAddr = tokio::net::lookup_host(address)
        .await
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{address} resolves to nothing"))?;
    match tokio::time::timeout(timeout, tcp::connect(addr)).await {
        Err(_) => Err(format!("no connection within {} ms", timeout.as_millis())),
        Ok(r) => r.map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_order_of_a_float() {
        // 123.456f32 = 0x42F6E979: A=42 B=F6 C=E9 D=79.
        let v = 123.456f32 as f64;
        assert_eq!(decode(&[0x42F6, 0xE979], RegisterType::F32, ByteOrder::ABCD, None), Some(v));
        assert_eq!(decode(&[0x79E9, 0xF642], RegisterType::F32, ByteOrder::DCBA, None), Some(v));
        assert_eq!(decode(&[0xF642, 0x79E9], RegisterType::F32, ByteOrder::BADC, None), Some(v));
        assert_eq!(decode(&[0xE979, 0x42F6], RegisterType::F32, ByteOrder::CDAB, None), Some(v));
    }

    #[test]
    fn decodes_integers_and_bits() {
        assert_eq!(decode(&[0xFFFF], RegisterType::I16, ByteOrder::ABCD, None), Some(-1.0));
        assert_eq!(decode(&[0xFFFF], RegisterType::U16, ByteOrder::ABCD, None), Some(65535.0));
        assert_eq!(decode(&[0x0001, 0x0002], RegisterType::U32, ByteOrder::ABCD, None), Some(65538.0));
        assert_eq!(decode(&[0x0002, 0x0001], RegisterType::U32, ByteOrder::CDAB, None), Some(65538.0));
        assert_eq!(decode(&[0xFFFF, 0xFFFE], RegisterType::I32, ByteOrder::ABCD, None), Some(-2.0));
        assert_eq!(decode(&[0, 0, 0, 5], RegisterType::U64, ByteOrder::ABCD, None), Some(5.0));
        assert_eq!(decode(&[5, 0, 0, 0], RegisterType::U64, ByteOrder::CDAB, None), Some(5.0));
        assert_eq!(decode(&[0x0500, 0, 0, 0], RegisterType::I64, ByteOrder::DCBA, None), Some(5.0));
        let bits = 1.5f64.to_bits();
        let words = [(bits >> 48) as u16, (bits >> 32) as u16, (bits >> 16) as u16, bits as u16];
        assert_eq!(decode(&words, RegisterType::F64, ByteOrder::ABCD, None), Some(1.5));
        assert_eq!(decode(&[0b100], RegisterType::Bit, ByteOrder::ABCD, Some(2)), Some(1.0));
        assert_eq!(decode(&[0b100], RegisterType::Bit, ByteOrder::ABCD, Some(1)), Some(0.0));
        assert_eq!(decode(&[1], RegisterType::F32, ByteOrder::ABCD, None), None, "too few registers");
    }
}
