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

/// `$body` with the constant `$D` set to the row length `$d` where that is one of `$n`
/// (common class counts: each gets its own unrolled copy of the kernel), else to 0 (the
/// kernel reads the runtime length).
macro_rules! with_const_len {
    ($d:expr, [$($n:literal),*], $D:ident => $body:expr) => {
        match $d {
            $($n => {
                const $D: usize = $n;
                $body
            })*
            _ => {
                const $D: usize = 0;
                $body
            }
        }
    };
}
pub(crate) use with_const_len;
