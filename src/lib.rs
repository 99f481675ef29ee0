pub use happening_core as core;
