//! The names of enums' variants as stores write them and the API shows them, each
//! listed once (`names!`, `codes!`), for the domain's types and the engine's errors.

/// The names of a fieldless enum's variants as the stores write them and the API shows
/// them, listed once: `NAMES` (declaration order), `as_str`, and `FromStr` (which refuses
/// anything else), so that the writing and the reading of a name cannot drift apart.
macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant's name, in declaration order (for schemas and checks).
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The name the stores write and the API shows.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = ();
            /// The variant of a name `as_str` gives; `Err` for any other text.
            fn from_str(s: &str) -> Result<Self, ()> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(()),
                }
            }
        }
    };
}

/// The codes of an enum whose variants may carry fields, as the API shows them, listed
/// once: `CODES` (declaration order) and `code`. No `FromStr`: a code alone cannot say a
/// variant's fields.
macro_rules! codes {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant's code, in declaration order (for schemas and checks).
            pub const CODES: &'static [&'static str] = &[$($name),+];

            /// The code the API shows (an error's `reason`).
            pub fn code(&self) -> &'static str {
                match self {
                    $($ty::$variant { .. } => $name),+
                }
            }
        }
    };
}
