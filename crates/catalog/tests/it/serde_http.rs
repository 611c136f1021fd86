//! serde forms of the catalog's types and conversions with `http::StatusCode`.

use crate::{check, same};
use serde::{Serialize, de::DeserializeOwned};
use statuslab_catalog::{Advice, Aspect, BodyRule, Class, Info, Need, Source, Status};
use std::fmt::Debug;

const ASPECTS: [Aspect; 5] = [
    Aspect::Reason,
    Aspect::Description,
    Aspect::Meaning,
    Aspect::Advice,
    Aspect::Status,
];

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(v: &T) -> Result<(), String> {
    let json = serde_json::to_string(v).map_err(|e| e.to_string())?;
    let back: T = serde_json::from_str(&json).map_err(|e| format!("{json}: {e}"))?;
    same(&format!("round trip of {json}"), &back, v)
}

#[test]
fn status_is_a_number() {
    check(100..=599u16, |&n| {
        let s = Status::new(n).map_err(|e| e.to_string())?;
        same(
            "serialized",
            &serde_json::to_string(&s).map_err(|e| e.to_string())?,
            &n.to_string(),
        )?;
        round_trip(&s)
    });
}

#[test]
fn status_deserialization_refuses_invalid_codes() {
    check(
        [
            "600", "999", "99", "0", "-1", "\"404\"", "404.5", "70000", "null",
        ],
        |&json| match serde_json::from_str::<Status>(json) {
            Ok(s) => Err(format!("accepted as {s:?}")),
            Err(_) => Ok(()),
        },
    );
}

#[test]
fn enums_round_trip() {
    check(Class::ALL, round_trip);
    check(
        [Source::Table, Source::Registry, Source::Unregistered],
        round_trip,
    );
    check([Need::Required, Need::Expected, Need::Optional], round_trip);
    check(
        [BodyRule::Forbidden, BodyRule::Empty, BodyRule::Allowed],
        round_trip,
    );
    check(ASPECTS, round_trip);
    check(
        [
            Advice::Continue,
            Advice::SwitchProtocol,
            Advice::Wait,
            Advice::Done,
            Advice::Poll,
            Advice::FollowLocation,
            Advice::SeeOther,
            Advice::Choose,
            Advice::UseCached,
            Advice::UseProxy,
            Advice::Unused,
            Advice::Authenticate,
            Advice::ProxyAuthenticate,
            Advice::DoNotRepeat,
            Advice::RepeatLater,
            Advice::RetryAfter,
            Advice::Upgrade,
            Advice::RepeatElsewhere,
            Advice::RetryIdempotent,
        ],
        round_trip,
    );
}

#[test]
fn enum_names_are_kebab_case() {
    check(
        [
            (serde_json::to_value(Class::ClientError), "client-error"),
            (serde_json::to_value(Source::Unregistered), "unregistered"),
            (serde_json::to_value(Need::Expected), "expected"),
            (serde_json::to_value(BodyRule::Forbidden), "forbidden"),
            (serde_json::to_value(Aspect::Advice), "advice"),
            (serde_json::to_value(Advice::DoNotRepeat), "do-not-repeat"),
        ],
        |(v, want)| {
            same(
                "json",
                &v.as_ref().map_err(|e| e.to_string())?.as_str(),
                &Some(*want),
            )
        },
    );
    check(ASPECTS, |&a| {
        same(
            "name",
            &serde_json::to_value(a).map_err(|e| e.to_string())?.as_str(),
            &Some(a.name()),
        )
    });
}

#[test]
fn info_serializes_the_catalog_fields() {
    check([100u16, 200, 299, 404, 418, 503, 504], |&n| {
        let s = Status::new(n).map_err(|e| e.to_string())?;
        let v = serde_json::to_value(s.info()).map_err(|e| e.to_string())?;
        same("code", &v["code"].as_u64(), &Some(n.into()))?;
        same("message", &v["message"].as_str(), &Some(s.message()))?;
        same(
            "description",
            &v["description"].as_str(),
            &Some(s.description()),
        )?;
        same("reason", &v["reason"].as_str(), &Some(s.reason()))?;
        same(
            "class",
            &v["class"].as_str(),
            &serde_json::to_value(s.class())
                .ok()
                .as_ref()
                .and_then(|c| c.as_str()),
        )?;
        same("advice", &v["advice"].as_str(), &Some(s.advice().name()))?;
        same(
            "wire.body is present",
            &v["wire"]["body"].is_string(),
            &true,
        )?;
        same(
            "differences is an array",
            &v["differences"].is_array(),
            &true,
        )
    });
}

#[test]
fn info_deserializes_from_its_code() {
    check(100..=599u16, |&n| {
        let want = Status::new(n).map_err(|e| e.to_string())?.info();
        let from_code: Info =
            serde_json::from_str(&format!("{{\"code\":{n}}}")).map_err(|e| e.to_string())?;
        same("from {code}", &from_code, &want)?;
        let full = serde_json::to_string(&want).map_err(|e| e.to_string())?;
        let from_full: Info = serde_json::from_str(&full).map_err(|e| e.to_string())?;
        same("from full JSON", &from_full, &want)
    });
    assert_eq!(
        serde_json::from_str::<Info>(r#"{"code":404}"#).unwrap(),
        Status::new(404).unwrap().info()
    );
    check(
        [
            r#"{"code":600}"#,
            r#"{"code":99}"#,
            r#"{}"#,
            r#"{"code":"404"}"#,
            "404",
        ],
        |&json| match serde_json::from_str::<Info>(json) {
            Ok(i) => Err(format!("accepted as {}", i.code)),
            Err(_) => Ok(()),
        },
    );
}

#[cfg(feature = "http")]
mod http_conversions {
    use crate::{check, same};
    use statuslab_catalog::{Error, Source, Status};

    #[test]
    fn to_and_from_http_status_code() {
        check(100..=999u16, |&n| {
            let h = http::StatusCode::from_u16(n).map_err(|e| e.to_string())?;
            let ours = Status::try_from(h);
            if n <= 599 {
                let s = ours.map_err(|e| e.to_string())?;
                same("code", &s.code(), &n)?;
                same("back to http", &http::StatusCode::from(s), &h)?;
                // http knows a phrase for exactly the registered codes (its phrases are older
                // than RFC 9110's in places, so only their presence is compared), bar 306 (Unused).
                let http_knows = h.canonical_reason().is_some() || n == 306;
                same(
                    "registered",
                    &(s.source() != Source::Unregistered),
                    &http_knows,
                )
            } else {
                same("refused", &ours, &Err(Error::OutOfRange(n.into())))
            }
        });
    }
}
