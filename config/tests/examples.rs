//! Every file in `config/examples/` loads; broken files report every problem with its path.

use eitwatch_config::agent_config::AgentConfig;
use eitwatch_config::problems::load;
use eitwatch_config::server_config::ServerConfig;

fn example(name: &str) -> String {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_example_loads() {
    let dir = format!("{}/examples", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        if name.starts_with("server") {
            load::<ServerConfig>(&text, &name).unwrap_or_else(|p| panic!("{p}"));
        } else if name.starts_with("agent") {
            load::<AgentConfig>(&text, &name).unwrap_or_else(|p| panic!("{p}"));
        } else if name.starts_with("indicators") {
            load::<eitwatch_config::indicators::IndicatorsFile>(&text, &name).unwrap_or_else(|p| panic!("{p}"));
        } else {
            panic!("{name}: an example is named server*.toml, agent*.toml or indicators*.toml");
        }
        seen += 1;
    }
    assert!(seen >= 2);
    let server: ServerConfig = load(&example("server.toml"), "server.toml").unwrap();
    assert_eq!(server.area[0].factory.len(), 3);
}

#[test]
fn every_problem_is_reported_with_file_and_key_path() {
    let text = example("agent.toml")
        .replacen("type = \"f32\"", "type = \"f33\"", 2)
        .replace("parameter = \"flow\"", "parameter = \"flw\"")
        .replace("qos = 1", "qos = 2");
    let problems = load::<AgentConfig>(&text, "agent.toml").unwrap_err();
    let text = problems.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "both bad types, then nothing else (semantic checks wait for a file that parses): {text}"
    );
    assert!(
        lines[0].starts_with("agent.toml: modbus[0].register[0].type: unknown variant `f33`, expected one of"),
        "{text}"
    );
    assert!(lines[1].starts_with("agent.toml: modbus[0].register[1].type: unknown variant `f33`"), "{text}");

    // Once it parses, every semantic problem at once.
    let text = example("agent.toml")
        .replace("parameter = \"flow\"", "parameter = \"flw\"")
        .replace("qos = 1", "qos = 2")
        .replace("point = \"outfall-1\"\nparameter = \"ph\"", "point = \"outfall-9\"\nparameter = \"ph\"");
    let problems = load::<AgentConfig>(&text, "agent.toml").unwrap_err();
    let got: Vec<String> = problems.list.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
    assert_eq!(
        got,
        [
            "modbus[0].register[1].point: unknown point \"outfall-9\", expected one of: outfall-1",
            "modbus[0].register[2].parameter: unknown effluent parameter \"flw\"",
            "mqtt[0].qos: 2 is not supported, expected 0 or 1",
        ]
    );
}

#[test]
fn later_indices_stay_the_files_own_after_pruning() {
    let text = r#"
[agent]
factory = "f"
[[point]]
id = "o"
kind = "effluent"
[uplink]
url = "http://x"
token = "t"
[[modbus]]
name = "a"
transport = { type = "tcp", address = "h:502" }
register = [
  { point = "o", parameter = "cod", table = "holding", address = 0, type = "f33", unit = "mg/L" },
  { point = "o", parameter = "cod", table = "holding", address = 2, type = "f32", unit = "mg/L" },
  { point = "o", parameter = "cod", table = "hold", address = 4, type = "f32", unit = "mg/L" },
]
[[modbus]]
name = "b"
transport = { type = "udp" }
register = []
"#;
    let problems = load::<AgentConfig>(text, "a.toml").unwrap_err();
    let paths: Vec<&str> = problems.list.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["modbus[0].register[0].type", "modbus[0].register[2].table", "modbus[1].transport.type"],
        "{problems}"
    );
}

#[test]
fn syntax_errors_name_line_and_column() {
    let problems = load::<ServerConfig>("[server]\ndata_dir = \n", "server.toml").unwrap_err();
    assert!(problems.to_string().starts_with("server.toml: line 2, column"), "{problems}");
    let problems = load::<ServerConfig>("[server]\ndata_dir = \"/d\"\nlisten = \"nowhere\"\n[[area]]\nid = \"a b\"\nname_en = \"A\"\nname_th = \"A\"\nprovince = \"P\"\n", "server.toml").unwrap_err();
    assert_eq!(
        problems.to_string(),
        "server.toml: server.listen: \"nowhere\" is not address:port\nserver.toml: area[0].id: \"a b\" is not a valid id, expected 1 to 64 of A-Z a-z 0-9 - _ ."
    );
}
