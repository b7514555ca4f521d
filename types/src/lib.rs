//! Wire types shared by the Brokkr broker, agent and CLI: request and response bodies, validated
//! names and the RFC 7807 problem body. No HTTP, database or Kubernetes code lives here.

/// Gives a fieldless enum `as_str` and `parse` over the fixed text each variant is stored as.
macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            pub fn parse(value: &str) -> Option<Self> {
                match value { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

#[cfg(feature = "config")]
pub mod config;
pub mod enrollment;
pub mod expression;
pub mod manifest_diff;
pub mod names;
pub mod plugins;
pub mod problem;
pub mod requests;
pub mod resources;
pub mod rollouts;
pub mod secret;
pub mod staged;
pub mod target_state;
pub mod templates;
pub mod webhooks;
pub mod work_orders;

pub use expression::ExpressionText;
pub use names::{
    AnnotationKey, AnnotationValue, Description, EventMessage, IdempotencyKey, Label, Name,
    NameError,
};
pub use problem::{FieldError, Problem};
pub use secret::Pak;
