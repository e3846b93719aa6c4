//! The `softmax_rs._core` extension module: argument extraction, dtype choice, GIL release
//! and error mapping. The arithmetic lives in `kernels/`, the layout logic in `layout.rs`.

pub mod argmax;
mod bind;
mod bind_family;
mod bind_topk;
pub mod elem;
pub mod error;
pub mod kernels;
pub mod layout;
pub mod parallel;
pub mod reduce;
pub mod simd;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use bind::{ArrayInfo, AxisArg};
use bind_family::{family, full_strides, input_dtype, reduced_shapes, Options};
use error::Error;
use layout::{Dim, Layout, MAX_OPS};
use reduce::{Kind, Operand, OUT, X};

/// Softmax along `axis`: exp(x - max) / sum(exp(x - max)). See the stub for the contract.
#[pyfunction]
#[pyo3(signature = (x, axis=AxisArg::Last, *, temperature=None, r#where=None, empty_rows=None, out=None, dtype=None))]
#[pyo3(
    text_signature = "(x, axis=-1, *, temperature=1.0, where=None, empty_rows=None, out=None, dtype=None)"
)]
#[allow(clippy::too_many_arguments)]
fn softmax<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: AxisArg,
    temperature: Option<&Bound<'py, PyAny>>,
    r#where: Option<&Bound<'py, PyAny>>,
    empty_rows: Option<&str>,
    out: Option<&Bound<'py, PyAny>>,
    dtype: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let o = Options {
        keepdims: false,
        temperature,
        where_: r#where,
        empty_rows,
        out,
        dtype,
        stats: None,
    };
    family(py, "softmax", Kind::Softmax, x, axis, o)
}

/// log_softmax along `axis`: (x - max) - log(sum(exp(x - max))).
#[pyfunction]
#[pyo3(signature = (x, axis=AxisArg::Last, *, temperature=None, r#where=None, empty_rows=None, out=None, dtype=None))]
#[pyo3(
    text_signature = "(x, axis=-1, *, temperature=1.0, where=None, empty_rows=None, out=None, dtype=None)"
)]
#[allow(clippy::too_many_arguments)]
fn log_softmax<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: AxisArg,
    temperature: Option<&Bound<'py, PyAny>>,
    r#where: Option<&Bound<'py, PyAny>>,
    empty_rows: Option<&str>,
    out: Option<&Bound<'py, PyAny>>,
    dtype: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let o = Options {
        keepdims: false,
        temperature,
        where_: r#where,
        empty_rows,
        out,
        dtype,
        stats: None,
    };
    family(py, "log_softmax", Kind::LogSoftmax, x, axis, o)
}

/// log(sum(exp(x))) along `axis`, computed as max + log(sum(exp(x - max))).
#[pyfunction]
#[pyo3(signature = (x, axis=AxisArg::Last, *, keepdims=false, temperature=None, r#where=None, out=None, dtype=None))]
#[pyo3(
    text_signature = "(x, axis=-1, *, keepdims=False, temperature=1.0, where=None, out=None, dtype=None)"
)]
#[allow(clippy::too_many_arguments)]
fn logsumexp<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: AxisArg,
    keepdims: bool,
    temperature: Option<&Bound<'py, PyAny>>,
    r#where: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
    dtype: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let o = Options {
        keepdims,
        temperature,
        where_: r#where,
        empty_rows: None,
        out,
        dtype,
        stats: None,
    };
    family(py, "logsumexp", Kind::LogSumExp, x, axis, o)
}

/// Per-row (max, sum(exp(x - max))) with kept dims: the partials that merge across chunks.
#[pyfunction]
#[pyo3(signature = (x, axis=AxisArg::Last))]
#[pyo3(text_signature = "(x, axis=-1)")]
fn row_stats<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, axis: AxisArg) -> PyResult<Py<PyAny>> {
    let o = Options {
        keepdims: true,
        temperature: None,
        where_: None,
        empty_rows: None,
        out: None,
        dtype: None,
        stats: None,
    };
    family(py, "row_stats", Kind::Stats, x, axis, o)
}

/// softmax (or log_softmax) of x from given per-row `max` and `sumexp`.
#[pyfunction]
#[pyo3(signature = (x, axis, max, sumexp, *, log=false, out=None))]
fn finish<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: AxisArg,
    max: &Bound<'py, PyAny>,
    sumexp: &Bound<'py, PyAny>,
    log: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let o = Options {
        keepdims: false,
        temperature: None,
        where_: None,
        empty_rows: None,
        out,
        dtype: None,
        stats: Some((max, sumexp)),
    };
    family(
        py,
        "finish",
        if log { Kind::FinishLog } else { Kind::Finish },
        x,
        axis,
        o,
    )
}

/// Indices of the maxima along `axis`, exactly as numpy.argmax.
#[pyfunction(name = "argmax")]
#[pyo3(signature = (x, axis=AxisArg::Last, *, keepdims=false, out=None))]
#[pyo3(text_signature = "(x, axis=-1, *, keepdims=False, out=None)")]
fn argmax_py<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: AxisArg,
    keepdims: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let xi = bind::as_array(x)?;
    let src = input_dtype("argmax", &xi)?;
    let ndim = xi.shape.len();
    if let AxisArg::Many(_) = axis {
        return Err(PyTypeError::new_err(
            "argmax takes an integer axis or None, not a tuple",
        ));
    }
    let mask = axis.mask(ndim)?;
    let d: usize = xi
        .shape
        .iter()
        .zip(&mask)
        .filter(|(_, &r)| r)
        .map(|(&n, _)| n)
        .product();
    if d == 0 {
        return Err(Error::Value("attempt to get argmax of an empty sequence".into()).into());
    }
    let (kept, squeezed) = reduced_shapes(&xi.shape, &mask);
    let out_shape = if keepdims { kept } else { squeezed };
    let descr = numpy::dtype::<isize>(py);
    let (user, oi) = match out.filter(|o| !o.is_none()) {
        Some(o) => (true, bind::check_out(o, &out_shape, &descr)?),
        None => (false, ArrayInfo::new(bind::empty(py, &out_shape, &descr)?)),
    };
    let os = full_strides(&oi, &mask, !keepdims);
    let dims: Vec<Dim> = xi
        .shape
        .iter()
        .zip(xi.strides.iter().zip(&os))
        .map(|(&len, (&sx, &so))| {
            let mut strides = [0; MAX_OPS];
            strides[X] = sx;
            strides[OUT] = so;
            Dim { len, strides }
        })
        .collect();
    let req = argmax::ArgRequest {
        layout: Layout::new(&dims, &mask, false),
        x: Operand {
            ptr: xi.ptr,
            dtype: src,
            swapped: xi.swapped,
        },
        out: oi.ptr,
    };
    // An interrupt comes back as the pending KeyboardInterrupt; the inner result adds nothing.
    let _ = bind::run_released(py, xi.size(), |check| argmax::run(&req, check))?;
    if !user && out_shape.is_empty() {
        // A scalar, as numpy.argmax returns.
        return Ok(oi.array.get_item(PyTuple::empty(py))?.unbind());
    }
    Ok(oi.array.into_any().unbind())
}

/// Set the number of threads the kernels use (>= 1).
#[pyfunction]
fn set_num_threads(n: i64) -> PyResult<()> {
    if n < 1 {
        return Err(PyValueError::new_err(format!(
            "the number of threads must be at least 1, got {n}"
        )));
    }
    parallel::set_num_threads(n as usize);
    Ok(())
}

/// The number of threads the kernels use.
#[pyfunction]
fn get_num_threads() -> usize {
    parallel::num_threads()
}

/// The ISA the kernels run on ("avx512", "avx2", "neon" or "generic").
#[pyfunction]
fn get_isa() -> &'static str {
    simd::selected().name()
}

/// Force an ISA (for tests and benchmarks). Raises ValueError if this CPU lacks it.
#[pyfunction]
fn set_isa(name: &str) -> PyResult<()> {
    match simd::Isa::from_name(name) {
        Some(isa) if simd::select(isa) => Ok(()),
        _ => Err(PyValueError::new_err(format!(
            "ISA {name:?} is not available on this CPU"
        ))),
    }
}

/// Every ISA this CPU can run.
#[pyfunction]
fn available_isas() -> Vec<&'static str> {
    simd::Isa::available()
        .into_iter()
        .map(|i| i.name())
        .collect()
}

/// Called in a forked child: the parent's worker threads do not exist there.
#[pyfunction]
fn _after_fork() {
    parallel::forget_pool_after_fork();
}

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(softmax, m)?)?;
    m.add_function(wrap_pyfunction!(log_softmax, m)?)?;
    m.add_function(wrap_pyfunction!(logsumexp, m)?)?;
    m.add_function(wrap_pyfunction!(argmax_py, m)?)?;
    m.add_function(wrap_pyfunction!(row_stats, m)?)?;
    m.add_function(wrap_pyfunction!(finish, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_isa, m)?)?;
    m.add_function(wrap_pyfunction!(set_isa, m)?)?;
    m.add_function(wrap_pyfunction!(available_isas, m)?)?;
    m.add_function(wrap_pyfunction!(_after_fork, m)?)?;
    bind_topk::register(m)?;
    Ok(())
}
