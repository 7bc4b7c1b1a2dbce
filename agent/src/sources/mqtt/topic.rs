//! Topic templates: `plant/{point}/{parameter}` with MQTT wildcards (`+` one level, `#` the
//! rest) → the filter subscribed to, and a topic's point and parameter.

use eitwatch_config::agent_config::Subscription;

/// What a topic says about the message, beyond the subscription's fixed point and parameter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicMatch {
    /// From `{point}`, or the subscription's `point`.
    pub point: Option<String>,
    /// From `{parameter}`, or the subscription's `parameter`.
    pub parameter: Option<String>,
}

/// Matches a topic against a subscription template; `None` when it does not match.
pub fn match_topic(sub: &Subscription, topic: &str) -> Option<TopicMatch> {
    let mut m = TopicMatch { point: sub.point.clone(), parameter: sub.parameter.clone() };
    let mut levels = topic.split('/');
    for pattern in sub.topic.split('/') {
        if pattern == "#" {
            return Some(m);
        }
        let level = levels.next()?;
        match pattern {
            "{point}" if !level.is_empty() => m.point = Some(level.to_string()),
            "{parameter}" if !level.is_empty() => m.parameter = Some(level.to_string()),
            "+" => {}
            literal if literal == level => {}
            _ => return None,
        }
    }
    levels.next().is_none().then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use eitwatch_config::agent_config::Payload;

    pub(crate) fn sub(topic: &str) -> Subscription {
        let toml = format!("topic = \"{topic}\"\npayload = \"number\"\nunit = \"mg/L\"\n");
        toml::from_str(&toml).expect("subscription")
    }

    fn m(point: &str, parameter: &str) -> Option<TopicMatch> {
        Some(TopicMatch { point: Some(point.into()), parameter: Some(parameter.into()) })
    }

    #[test]
    fn templates_with_wildcards() {
        let s = sub("plant/{point}/{parameter}");
        assert_eq!(s.payload, Payload::Number);
        assert_eq!(s.filter(), "plant/+/+");
        assert_eq!(match_topic(&s, "plant/outfall-1/cod"), m("outfall-1", "cod"));
        assert_eq!(match_topic(&s, "plant/outfall-1"), None);
        assert_eq!(match_topic(&s, "plant/outfall-1/cod/x"), None);
        assert_eq!(match_topic(&s, "other/outfall-1/cod"), None);
        assert_eq!(match_topic(&s, "plant//cod"), None, "an empty level names nothing");
        let mut fixed = sub("lab/+/{parameter}/#");
        fixed.point = Some("outfall-2".into());
        assert_eq!(fixed.filter(), "lab/+/+/#");
        assert_eq!(match_topic(&fixed, "lab/x/bod/a/b"), m("outfall-2", "bod"));
        assert_eq!(match_topic(&fixed, "lab/x/bod"), m("outfall-2", "bod"), "# matches the parent level too");
        let hash = sub("#");
        assert_eq!(match_topic(&hash, "a/b"), Some(TopicMatch::default()));
    }
}
