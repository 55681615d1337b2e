//! `text_enum!`: a closed set of status or outcome names as a Rust enum that reads and
//! writes the same lowercase text everywhere — JSON (serde), the API contract (utoipa
//! lists the values) and SQLite TEXT columns (rusqlite) — so code compares variants,
//! never string literals, and rows written before the enum existed still read.
//!
//! Part of the floor: it imports nothing of warden.

/// Declares an enum whose variants each carry their text:
///
/// ```ignore
/// text_enum! {
///     /// How a backup ended.
///     pub enum BackupStatus {
///         /// Still running.
///         Running = "running",
///         /// Finished and verified.
///         Ok = "ok",
///     }
/// }
/// ```
///
/// Each text must be its variant's name in snake_case (serde and utoipa spell it so).
/// It derives `Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema`
/// and implements `ALL`, `as_str`, `parse`, `Display` and
/// rusqlite's `ToSql`/`FromSql` (TEXT; an unknown text is a conversion error naming the
/// type and the value).
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $text:literal
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            serde::Serialize,
            serde::Deserialize,
            utoipa::ToSchema,
        )]
        // Written out here, not per variant from `$text`: utoipa does not read an
        // attribute value that comes from a macro argument, and would list the variant
        // names. Each `$text` is its variant's name in snake_case; the `text_enum` tests
        // check that JSON, the schema and `as_str` agree for every such enum.
        #[serde(rename_all = "snake_case")]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text this value is written as (JSON, SQL, messages).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value written as `text`, if there is one.
            pub fn parse(text: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::parse(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!(concat!("unknown ", stringify!($name), " {:?}"), text).into(),
                    )
                })
            }
        }
    };
}

pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    text_enum! {
        /// A test set.
        pub enum Sample {
            /// One.
            RolledBack = "rolled_back",
            /// Two.
            Ok = "ok",
        }
    }

    /// JSON, the OpenAPI schema and `as_str` spell every value of `T` the same way.
    fn agrees<T>(all: &[T], as_str: fn(&T) -> &'static str)
    where
        T: serde::Serialize + utoipa::PartialSchema,
    {
        let texts: Vec<&str> = all.iter().map(as_str).collect();
        for (v, text) in all.iter().zip(&texts) {
            assert_eq!(
                serde_json::to_value(v).ok(),
                Some(serde_json::Value::from(*text))
            );
        }
        let schema = serde_json::to_value(T::schema()).unwrap_or_default();
        let listed: Vec<&str> = schema["enum"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(listed, texts, "{schema}");
    }

    /// The tests name the crate's text enums (the module itself imports none of them).
    #[test]
    fn every_text_enum_spells_its_values_alike_in_json_schema_and_sql() {
        agrees(Sample::ALL, |v| v.as_str());
        agrees(crate::backup::record::BackupStatus::ALL, |v| v.as_str());
        agrees(crate::backup::record::RestoreStatus::ALL, |v| v.as_str());
        agrees(crate::schedule::record::RunStatus::ALL, |v| v.as_str());
        agrees(crate::schedule::record::StepStatus::ALL, |v| v.as_str());
        agrees(crate::schedule::chain::TaskState::ALL, |v| v.as_str());
        agrees(crate::schedule::TriggerOutcome::ALL, |v| v.as_str());
        agrees(crate::install::update::UpdateResult::ALL, |v| v.as_str());
        agrees(crate::install::update::UpdateState::ALL, |v| v.as_str());
        agrees(crate::health::PartStatus::ALL, |v| v.as_str());
    }

    #[test]
    fn json_sql_and_text_agree() {
        assert_eq!(
            serde_json::to_string(&Sample::RolledBack).ok().as_deref(),
            Some("\"rolled_back\"")
        );
        assert_eq!(
            serde_json::from_str::<Sample>("\"ok\"").ok(),
            Some(Sample::Ok)
        );
        assert_eq!(Sample::parse("rolled_back"), Some(Sample::RolledBack));
        assert_eq!(Sample::parse("nope"), None);
        let db = rusqlite::Connection::open_in_memory().expect("db");
        let back: Sample = db
            .query_row("SELECT ?1", [Sample::RolledBack], |r| r.get(0))
            .expect("round trip");
        assert_eq!(back, Sample::RolledBack);
        let bad: rusqlite::Result<Sample> = db.query_row("SELECT 'nope'", [], |r| r.get(0));
        assert!(bad.is_err());
    }
}
