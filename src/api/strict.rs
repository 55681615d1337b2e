//! JSON bodies read as the API document describes them: a struct only from an object.
//!
//! serde's derived `Deserialize` also takes a struct written as an array of its field
//! values in order (`"retention": [7, 30]`), which no schema in the document allows and
//! which silently binds values to fields by position. [`Strict`] parses the body into a
//! `serde_json::Value` and deserializes the target from it through [`Ref`], which refuses
//! an array wherever a struct is expected and otherwise behaves like `serde_json`.

use serde::de::value::{MapAccessDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Unexpected, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use serde_json::Value;

/// A value of `T` read strictly from JSON (see the module documentation). Errors name
/// the path of the offending field, like axum's own JSON extractor.
pub struct Strict<T>(pub T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Strict<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        serde_path_to_error::deserialize(Ref(&v))
            .map(Strict)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." {
                    de::Error::custom(inner)
                } else {
                    de::Error::custom(format!("{path}: {inner}"))
                }
            })
    }
}

/// A deserializer over a borrowed JSON value that refuses arrays for structs.
struct Ref<'a>(&'a Value);

type Error = serde_json::Error;

impl<'de> IntoDeserializer<'de, Error> for Ref<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

fn entries<'de>(
    o: &'de serde_json::Map<String, Value>,
) -> MapDeserializer<'de, impl Iterator<Item = (&'de str, Ref<'de>)>, Error> {
    MapDeserializer::new(o.iter().map(|(k, v)| (k.as_str(), Ref(v))))
}

impl<'de> Deserializer<'de> for Ref<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(a) => {
                let mut seq = SeqDeserializer::new(a.iter().map(Ref));
                let out = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Value::Object(o) => {
                let mut map = entries(o);
                let out = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(_) => Err(de::Error::invalid_type(Unexpected::Seq, &"an object")),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => {
                visitor.visit_enum(IntoDeserializer::<Error>::into_deserializer(s.as_str()))
            }
            Value::Object(o) => visitor.visit_enum(MapAccessDeserializer::new(entries(o))),
            _ => Err(de::Error::invalid_type(
                Unexpected::Other("a value that is neither a string nor an object"),
                &"a variant name or an object with one key",
            )),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        a: u32,
        #[serde(default)]
        b: Option<String>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        One,
        Two { n: u8 },
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Outer {
        inner: Inner,
        kinds: Vec<Kind>,
        #[serde(default)]
        maybe: Option<Inner>,
    }

    fn read(json: &str) -> Result<Outer, String> {
        serde_json::from_str::<Strict<Outer>>(json)
            .map(|s| s.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_what_serde_json_reads() {
        let v = read(r#"{"inner":{"a":1},"kinds":["one",{"two":{"n":2}}],"maybe":null}"#);
        assert_eq!(
            v,
            Ok(Outer {
                inner: Inner { a: 1, b: None },
                kinds: vec![Kind::One, Kind::Two { n: 2 }],
                maybe: None,
            })
        );
    }

    #[test]
    fn refuses_a_struct_written_as_an_array_and_names_where() {
        // Plain serde_json takes this (fields by position).
        let lenient: Result<Outer, _> = serde_json::from_str(r#"{"inner":[1,null],"kinds":[]}"#);
        assert!(lenient.is_ok());
        let e = read(r#"{"inner":[1,null],"kinds":[]}"#).unwrap_err();
        assert!(e.contains("inner") && e.contains("an object"), "{e}");
        let e = read(r#"{"inner":{"a":1},"kinds":[],"maybe":[2]}"#).unwrap_err();
        assert!(e.contains("maybe"), "{e}");
        let e = read(r#"{"inner":{"a":1,"c":2},"kinds":[]}"#).unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }
}
