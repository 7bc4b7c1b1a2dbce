//! Fixtures the unit tests share.

use eitwatch_config::server_config::ServerConfig;
use eitwatch_config::site::Registry;

/// A server config of one area, `a1` (Rayong), holding `factories` (`[[area.factory]]`
/// tables, and further `[[area]]`s after them if a test needs them); its data directory is
/// never opened.
pub(crate) fn config(factories: &str) -> ServerConfig {
    let toml = format!(
        "[server]\ndata_dir = \"/nonexistent\"\n[[area]]\nid = \"a1\"\nname_en = \"Area one\"\n\
         name_th = \"พื้นที่หนึ่ง\"\nprovince = \"Rayong\"\n{factories}"
    );
    eitwatch_config::problems::load(&toml, "test.toml").expect("the test's site")
}

/// The registry of [`config`].
pub(crate) fn registry(factories: &str) -> Registry {
    Registry::new(config(factories).area)
}
