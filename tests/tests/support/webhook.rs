//! A webhook receiver on a loopback port, for the alert webhooks.

/// A webhook receiver on a loopback port: answers 500 to the first `fail_first` requests,
/// 204 after; keeps every request body.
pub struct WebhookReceiver {
    pub url: String,
    pub bodies: std::sync::Arc<std::sync::Mutex<Vec<(u16, serde_json::Value)>>>,
}

impl WebhookReceiver {
    pub async fn start(fail_first: usize) -> WebhookReceiver {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let bodies: std::sync::Arc<std::sync::Mutex<Vec<(u16, serde_json::Value)>>> = Default::default();
        let kept = bodies.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let length: usize = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= head_end + 4 + length {
                            break Some(buf[head_end + 4..head_end + 4 + length].to_vec());
                        }
                    }
                };
                let Some(body) = body else { continue };
                let status = if kept.lock().expect("lock").len() < fail_first { 500 } else { 204 };
                kept.lock().expect("lock").push((status, serde_json::from_slice(&body).unwrap_or_default()));
                let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = conn.write_all(reply.as_bytes()).await;
            }
        });
        WebhookReceiver { url, bodies }
    }
}
