//! Everything a notebook cell needs, in one `use parcours::prelude::*;`
//! (the course kernel does this for you).

pub use crate::bench::{Bench, Comparison, Timing, bench, compare, time};
pub use crate::chart::{BarChart, Chart};
pub use crate::display::{Html, ShowDebug as _, Table, format_duration, format_si};
pub use crate::exercise::{
    check, check_close, check_memory_below, check_parallel, check_processes, check_slice,
    check_that,
};
pub use crate::progress::{Progress, ProgressIteratorExt};
pub use rayon::prelude::*;
