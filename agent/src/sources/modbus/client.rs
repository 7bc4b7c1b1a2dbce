//! One connection to a Modbus endpoint (TCP, RTU over TCP, RTU over a serial line) and the
//! reads the poller and the probe send through it, each bounded by a timeout: the async
//! client can otherwise wait forever for an answer that never comes (tokio-modbus #113).

use std::net::SocketAddr;
use std::time::Duration;

use eitwatch_config::agent_config::{ModbusTransport, Parity, RegisterTable};
use tokio_modbus::client::{Context as ModbusContext, Reader, rtu, tcp};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode, Slave};
use tokio_serial::SerialPort;

/// Why a read gave no values. The three cases call for three different reactions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadError {
    /// No answer in time: the slave is off, or its address or the bus settings are wrong.
    /// The connection may hold half a late answer, so it is dropped.
    #[error("no answer within {timeout_ms} ms")]
    Timeout {
        /// The timeout.
        timeout_ms: u64,
    },
    /// The link itself failed (connection reset, port gone, garbled frame).
    #[error("link failed: {0}")]
    Link(String),
    /// The slave answered with a Modbus exception: it is alive but refuses this request.
    #[error("exception {code:?} (0x{number:02X})")]
    Exception {
        /// The exception.
        code: ExceptionCode,
        /// Its number on the wire.
        number: u8,
    },
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot connect to {endpoint}: {reason}")]
pub struct ConnectError {
    /// `host:port` or the serial device.
    pub endpoint: String,
    /// What failed.
    pub reason: String,
}

/// An open connection.
pub struct Connection {
    ctx: ModbusContext,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

/// Opens a connection; the TCP connect is bounded by `timeout`.
pub async fn connect(transport: &ModbusTransport, timeout: Duration) -> Result<Connection, ConnectError> {
    let endpoint = transport.endpoint().to_string();
    let fail = |reason: String| ConnectError { endpoint: endpoint.clone(), reason };
    let ctx = match transport {
        ModbusTransport::Tcp { address } => tcp::attach(tcp_stream(address, timeout).await.map_err(fail)?),
        ModbusTransport::RtuOverTcp { address } => rtu::attach(tcp_stream(address, timeout).await.map_err(fail)?),
        ModbusTransport::Rtu { port, baud, data_bits, parity, stop_bits } => {
            let builder = tokio_serial::new(port, *baud)
                .data_bits(if *data_bits == 7 { tokio_serial::DataBits::Seven } else { tokio_serial::DataBits::Eight })
                .parity(match parity {
                    Parity::None => tokio_serial::Parity::None,
                    Parity::Even => tokio_serial::Parity::Even,
                    Parity::Odd => tokio_serial::Parity::Odd,
                })
                .stop_bits(if *stop_bits == 2 { tokio_serial::StopBits::Two } else { tokio_serial::StopBits::One });
            let stream = tokio_serial::SerialStream::open(&builder).map_err(|e| fail(e.to_string()))?;
            // Bytes left from before (a late answer to a request that timed out) would
            // garble the next frame.
            let _ = stream.clear(tokio_serial::ClearBuffer::All);
            rtu::attach(stream)
        }
    };
    Ok(Connection { ctx })
}

async fn tcp_stream(address: &str, timeout: Duration) -> Result<tokio::net::TcpStream, String> {
    let addr: SocketAddr = tokio::net::lookup_host(address)
        .await
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{address} resolves to nothing"))?;
    let stream = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => return Err(format!("no connection within {} ms", timeout.as_millis())),
        Ok(r) => r.map_err(|e| e.to_string())?,
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

impl Connection {
    /// Reads `count` registers (or bits, one word each holding 0 or 1) from `start` of
    /// `table` on `slave`.
    pub async fn read(
        &mut self,
        slave: u8,
        table: RegisterTable,
        start: u16,
        count: u16,
        timeout: Duration,
    ) -> Result<Vec<u16>, ReadError> {
        self.ctx.set_slave(Slave(slave));
        let ctx = &mut self.ctx;
        let bits = |r: tokio_modbus::Result<Vec<bool>>| r.map(|r| r.map(|b| b.iter().map(|&b| u16::from(b)).collect()));
        let call = async {
            match table {
                RegisterTable::Holding => ctx.read_holding_registers(start, count).await,
                RegisterTable::Input => ctx.read_input_registers(start, count).await,
                RegisterTable::Coil => bits(ctx.read_coils(start, count).await),
                RegisterTable::Discrete => bits(ctx.read_discrete_inputs(start, count).await),
            }
        };
        let mut words = match tokio::time::timeout(timeout, call).await {
            Err(_) => return Err(ReadError::Timeout { timeout_ms: timeout.as_millis() as u64 }),
            Ok(Err(e)) => return Err(ReadError::Link(e.to_string())),
            Ok(Ok(Err(code))) => return Err(ReadError::Exception { code, number: u8::from(code) }),
            Ok(Ok(Ok(words))) => words,
        };
        // Bits come padded to whole bytes; a short answer is a broken device, not a value.
        if words.len() < usize::from(count) {
            return Err(ReadError::Link(format!("asked for {count} values, got {}", words.len())));
        }
        words.truncate(usize::from(count));
        Ok(words)
    }

    /// Closes the connection politely (TCP FIN); errors are of no interest by then.
    pub async fn close(mut self) {
        use tokio_modbus::client::Client;
        let _ = tokio::time::timeout(Duration::from_millis(200), self.ctx.disconnect()).await;
    }
}
