//! A simulated factory device for the demo: a real Modbus TCP server (tokio-modbus's
//! server) over a register bank that a simulation task updates.

use std::collections::BTreeMap;
use std::future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use eitwatch_config::agent_config::ByteOrder;
use tokio_modbus::prelude::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};

/// Holding registers by (slave, address), shared between the server and the simulation.
#[derive(Debug, Clone, Default)]
pub struct RegisterBank(Arc<Mutex<BTreeMap<(u8, u16), u16>>>);

impl RegisterBank {
    /// Writes an f32 at `address` (two registers) in `order`.
    pub fn set_f32(&self, slave: u8, address: u16, value: f32, order: ByteOrder) {
        let [a, b, c, d] = value.to_be_bytes();
        let words = match order {
            ByteOrder::ABCD => [u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])],
            ByteOrder::BADC => [u16::from_be_bytes([b, a]), u16::from_be_bytes([d, c])],
            ByteOrder::CDAB => [u16::from_be_bytes([c, d]), u16::from_be_bytes([a, b])],
            ByteOrder::DCBA => [u16::from_be_bytes([d, c]), u16::from_be_bytes([b, a])],
        };
        let mut bank = self.0.lock().unwrap_or_else(|p| p.into_inner());
        bank.insert((slave, address), words[0]);
        bank.insert((slave, address.wrapping_add(1)), words[1]);
    }

    fn read(&self, slave: u8, address: u16, count: u16) -> Result<Vec<u16>, ExceptionCode> {
        let bank = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (0..count)
            .map(|i| bank.get(&(slave, address.wrapping_add(i))).copied().ok_or(ExceptionCode::IllegalDataAddress))
            .collect()
    }
}

#[derive(Debug)]
struct Service(RegisterBank);

impl tokio_modbus::server::Service for Service {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let slave = req.slave;
        future::ready(match req.request {
            Request::ReadHoldingRegisters(address, count) => {
                self.0.read(slave, address, count).map(Response::ReadHoldingRegisters)
            }
            Request::ReadInputRegisters(address, count) => {
                self.0.read(slave, address, count).map(Response::ReadInputRegisters)
            }
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

/// Serves `bank` over Modbus TCP on `listen` (port 0: any); returns the bound address.
pub async fn serve_modbus(listen: SocketAddr, bank: RegisterBank) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let server = Server::new(listener);
    tokio::spawn(async move {
        let on_connected = |stream, socket_addr| {
            let bank = bank.clone();
            async move { accept_tcp_connection(stream, socket_addr, move |_| Ok(Some(Service(bank.clone())))) }
        };
        if let Err(error) =
            server.serve(&on_connected, |error| tracing::warn!(%error, "Simulated Modbus connection failed")).await
        {
            tracing::error!(%error, "Simulated Modbus device stopped");
        }
    });
    Ok(addr)
}
