//! The site registry the end-to-end tests run against, composed from a few named pieces
//! (areas, factories, outfalls and stacks) and written as the `[[area]]` tables of a server's
//! config.

use std::fmt::Write as _;

/// The five effluent parameters the agent tests read and write.
pub const EFFLUENT_FIVE: [&str; 5] = ["cod", "bod", "ph", "tss", "temp"];

/// Every parameter a sources test may map a Modbus register or an MQTT topic to.
pub const EFFLUENT_ALL: [&str; 13] =
    ["cod", "bod", "ph", "tss", "temp", "color", "zn", "cu", "cd", "ni", "pb", "mn", "tds"];

#[derive(Debug, Clone, Default)]
pub struct Site {
    areas: Vec<Area>,
}

#[derive(Debug, Clone)]
pub struct Area {
    id: String,
    name_en: String,
    name_th: String,
    province: String,
    factories: Vec<Factory>,
}

#[derive(Debug, Clone)]
pub struct Factory {
    id: String,
    name: String,
    category: u8,
    points: Vec<Point>,
}

#[derive(Debug, Clone)]
pub struct Point {
    id: String,
    kind: &'static str,
    parameters: Vec<String>,
    /// More keys of the point, as TOML lines.
    keys: Vec<String>,
}

impl Site {
    pub fn new() -> Site {
        Site::default()
    }

    pub fn area(mut self, area: Area) -> Site {
        self.areas.push(area);
        self
    }

    /// Mae Moh (Lampang): factory f1 with one outfall measuring [`EFFLUENT_FIVE`], factory f2
    /// with one measuring COD. The site of the agent, ingest, store and delivery tests.
    pub fn mae_moh() -> Site {
        Site::new().area(
            Area::new("mae-moh", "Mae Moh", "แม่เมาะ", "Lampang")
                .factory(Factory::new("f1", "Factory one").point(Point::outfall("outfall-1", &EFFLUENT_FIVE)))
                .factory(Factory::new("f2", "Factory two").point(Point::outfall("outfall-1", &["cod"]))),
        )
    }

    /// Area one (Rayong): factory f1 with an outfall (COD) and a heavy-oil boiler stack,
    /// factory f2 with an outfall (COD). The site of the compliance and indicator tests.
    pub fn area_one() -> Site {
        Site::new().area(
            Area::new("a1", "Area one", "พื้นที่หนึ่ง", "Rayong")
                .factory(
                    Factory::new("f1", "Factory one")
                        .point(Point::outfall("outfall-1", &["cod"]))
                        .point(Point::boiler_stack("stack-1")),
                )
                .factory(Factory::new("f2", "Factory two").point(Point::outfall("outfall-1", &["cod"]))),
        )
    }

    /// One area with factory f1 alone, whose outfalls `points` measure [`EFFLUENT_ALL`]:
    /// the site of the sources tests, which name a point per register or topic.
    pub fn outfalls_of_f1(points: &[String]) -> Site {
        let f1 =
            points.iter().fold(Factory::new("f1", "Factory one"), |f, p| f.point(Point::outfall(p, &EFFLUENT_ALL)));
        Site::new().area(Area::new("a", "A", "ก", "Lampang").factory(f1))
    }

    /// The `[[area]]` tables.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for a in &self.areas {
            let _ = write!(
                out,
                "[[area]]\nid = {}\nname_en = {}\nname_th = {}\nprovince = {}\n",
                quoted(&a.id),
                quoted(&a.name_en),
                quoted(&a.name_th),
                quoted(&a.province)
            );
            for f in &a.factories {
                let _ = write!(
                    out,
                    "[[area.factory]]\nid = {}\nname = {}\ncategory = {}\n",
                    quoted(&f.id),
                    quoted(&f.name),
                    f.category
                );
                for p in &f.points {
                    let parameters: Vec<String> = p.parameters.iter().map(|q| quoted(q)).collect();
                    let _ = write!(
                        out,
                        "[[area.factory.point]]\nid = {}\nkind = {}\nparameters = [{}]\n",
                        quoted(&p.id),
                        quoted(p.kind),
                        parameters.join(", ")
                    );
                    for key in &p.keys {
                        let _ = writeln!(out, "{key}");
                    }
                }
            }
        }
        out
    }
}

/// A TOML basic string. (Not `{:?}`: Rust escapes Thai vowel marks as `\u{e48}`, which TOML
/// does not read.)
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Area {
    pub fn new(id: &str, name_en: &str, name_th: &str, province: &str) -> Area {
        Area {
            id: id.into(),
            name_en: name_en.into(),
            name_th: name_th.into(),
            province: province.into(),
            factories: Vec::new(),
        }
    }

    pub fn factory(mut self, factory: Factory) -> Area {
        self.factories.push(factory);
        self
    }
}

impl Factory {
    /// A category 3 factory (the effluent standard's strictest limits apply).
    pub fn new(id: &str, name: &str) -> Factory {
        Factory { id: id.into(), name: name.into(), category: 3, points: Vec::new() }
    }

    pub fn point(mut self, point: Point) -> Factory {
        self.points.push(point);
        self
    }
}

impl Point {
    /// An effluent outfall measuring `parameters`.
    pub fn outfall(id: &str, parameters: &[&str]) -> Point {
        Point {
            id: id.into(),
            kind: "effluent",
            parameters: parameters.iter().map(|p| p.to_string()).collect(),
            keys: Vec::new(),
        }
    }

    /// A combustion boiler's stack on heavy oil, SO₂ and O₂ a minute apart (the O₂ correction
    /// and the hourly averages apply).
    pub fn boiler_stack(id: &str) -> Point {
        Point {
            id: id.into(),
            kind: "emission",
            parameters: vec!["so2".into(), "o2".into()],
            keys: vec![
                "expected_interval_s = 60".into(),
                "emission = { source = \"boiler\", fuel = \"heavy_oil\", combustion = true }".into(),
            ],
        }
    }

    /// The point with one more key (a TOML line such as `faults = { no_data_after_s = 2 }`).
    pub fn with(mut self, key: &str) -> Point {
        self.keys.push(key.into());
        self
    }
}
