//! Pure kernels over slices: no Python, no layout. Each is `#[inline(always)]` so that it is
//! compiled for whichever ISA the caller was dispatched to.

pub mod argmax;
pub mod column;
pub mod exp;
pub mod log;
pub mod row;
pub mod shift;
pub mod short;
pub mod tile;
pub mod topk;
pub mod window;
