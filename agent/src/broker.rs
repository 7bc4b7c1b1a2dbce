//! An embedded MQTT broker (rumqttd), for a factory with no broker of its own: the sensors
//! publish to the agent's machine and the agent subscribes locally.

use std::net::SocketAddr;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
#[error("embedded MQTT broker on {listen}: {reason}")]
pub struct BrokerError {
    listen: SocketAddr,
    reason: String,
}

/// Starts a broker listening on `listen` (MQTT 3.1.1) on its own thread; it runs until the
/// process exits. Returns once the port accepts connections.
pub fn start(listen: SocketAddr) -> Result<(), BrokerError> {
    let fail = |reason: String| BrokerError { listen, reason };
    let config = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 1000
max_outgoing_packet_count = 200
max_segment_size = 10485760
max_segment_count = 10
[v4.1]
name = "v4-1"
listen = "{listen}"
next_connection_delay_ms = 1
[v4.1.connections]
connection_timeout_ms = 60000
max_payload_size = 65536
max_inflight_count = 100
dynamic_filters = true
"#
    );
    let config: rumqttd::Config = toml::from_str(&config).map_err(|e| fail(e.to_string()))?;
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(error) = broker.start() {
                tracing::error!(%listen, %error, "Embedded MQTT broker stopped");
            }
        })
        .map_err(|e| fail(e.to_string()))?;
    // Broker::start binds inside its thread: wait until the port answers (bounded).
    for _ in 0..200 {
        if std::net::TcpStream::connect(listen).is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(fail("the port never accepted a connection".into()))
}
