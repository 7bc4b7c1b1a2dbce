//! `[[mqtt]] max_message_bytes`: its default and its bounds.

use eitwatch_config::agent_config::{AgentConfig, MQTT_MAX_MESSAGE_BYTES};
use eitwatch_config::problems::load;

fn config(max_message_bytes: Option<u64>) -> String {
    let key = max_message_bytes.map_or(String::new(), |n| format!("max_message_bytes = {n}\n"));
    format!(
        "[agent]\nfactory = \"f1\"\n[[point]]\nid = \"o1\"\nkind = \"effluent\"\n\
         [uplink]\nurl = \"http://127.0.0.1:8086\"\ntoken = \"t\"\n\
         [[mqtt]]\nname = \"m\"\nbroker = \"127.0.0.1:1883\"\nclient_id = \"c\"\n{key}\
         [[mqtt.subscription]]\ntopic = \"f1/{{point}}/{{parameter}}\"\npayload = \"json\"\n"
    )
}

#[test]
fn max_message_bytes_defaults_to_a_mebibyte_and_is_bounded_by_mqtt() {
    let c: AgentConfig = load(&config(None), "agent.toml").unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(c.mqtt[0].max_message_bytes, 1 << 20);
    for ok in [1024, MQTT_MAX_MESSAGE_BYTES] {
        let c: AgentConfig = load(&config(Some(ok)), "agent.toml").unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(c.mqtt[0].max_message_bytes, ok);
    }
    for bad in [0, 1023, MQTT_MAX_MESSAGE_BYTES + 1] {
        let problems = load::<AgentConfig>(&config(Some(bad)), "agent.toml").expect_err("problems");
        let got: Vec<String> = problems.list.iter().map(|p| p.path.clone()).collect();
        assert_eq!(got, ["mqtt[0].max_message_bytes"], "{problems}");
        assert!(problems.to_string().contains(&format!("{bad} is out of range")), "{problems}");
    }
}
