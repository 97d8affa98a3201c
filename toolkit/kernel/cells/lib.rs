//! fogkit, re-exported whole as a Rust `dylib` for the kernel's cells: evcxr links each cell
//! against its dependencies, and against rlibs that means fogkit, dfdx, polars and plotly
//! again in every cell; against this one shared library a cell links only itself. It adds
//! nothing to fogkit and must never hold code of its own.
pub use fogkit_core::*;
