//! Load for `scripts/bench-agent.sh`: publishes JSON readings at a fixed rate with QoS 1
//! over 100 points × 10 mg/L parameters (`bench/p<i>/<parameter>`), waits until the broker
//! has acknowledged every one, and prints how many it sent. A Python publisher could not
//! hold 10 000 QoS 1 messages/s on the benchmark machine.
//!
//! `mqtt_load <broker port> <rate per s> <seconds> <first timestamp ms>`

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const PARAMETERS: [&str; 10] = ["cod", "bod", "tss", "tds", "zn", "cu", "cd", "ni", "pb", "mn"];

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, port, rate, seconds, start_ms] = args.as_slice() else {
        anyhow::bail!("usage: mqtt_load <broker port> <rate per s> <seconds> <first timestamp ms>");
    };
    let (port, rate, seconds, start_ms): (u16, u64, f64, i64) =
        (port.parse()?, rate.parse()?, seconds.parse()?, start_ms.parse()?);
    let mut options = MqttOptions::new(format!("bench-load-{start_ms}"), "127.0.0.1", port);
    options.set_inflight(1000);
    let (client, mut events) = AsyncClient::new(options, 10_000);
    let (acked_tx, mut acked_rx) = tokio::sync::watch::channel(0u64);
    tokio::spawn(async move {
        let mut acked = 0u64;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acked += 1;
                    let _ = acked_tx.send(acked);
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("mqtt_load: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    let total = (rate as f64 * seconds) as u64;
    let start = tokio::time::Instant::now();
    for i in 0..total {
        // Publish on schedule: message i is due at i / rate seconds.
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate as f64)).await;
        let (point, parameter) = (i % 100, PARAMETERS[((i / 100) % 10) as usize]);
        // One reading per series per ms step: 1 000 series, distinct times in each.
        let t = start_ms + (i / 1000) as i64;
        let payload = format!(r#"{{"value": {}, "time": {t}}}"#, 7.0 + (i % 7) as f64 * 0.5);
        client.publish(format!("bench/p{point}/{parameter}"), QoS::AtLeastOnce, false, payload).await?;
    }
    let behind = start.elapsed().as_secs_f64() - seconds;
    tokio::time::timeout(Duration::from_secs(120), acked_rx.wait_for(|&a| a >= total)).await??;
    eprintln!("mqtt_load: {total} published and acknowledged; {behind:.2} s behind schedule at the end");
    println!("{total}");
    Ok(())
}
