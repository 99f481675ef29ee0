//! `sqlx::migrate!` embeds `migrations/` when the crate compiles, and cargo does not know
//! that it reads them: without this, a changed or new migration alone would not rebuild
//! the crate, and tests and servers would run the migrations embedded before.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
