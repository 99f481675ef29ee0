//! Domain types: plain data, no behaviour that needs a store.

mod booking;
mod directory;
mod event;
mod hold;
mod notification;

pub use booking::*;
pub use directory::*;
pub use event::*;
pub use hold::*;
pub use notification::*;
