//! The `softmax_rs._core` extension module: argument extraction, dtype choice, GIL release
//! and error mapping. The arithmetic lives in `kernels/`, the layout logic in `layout.rs`.

pub mod argmax;
mod bind;
mod bind_topk;
pub mod elem;
pub mod error;
pub mod kernels;
pub mod layout;
pub mod parallel;
pub mod reduce;
pub mod simd;

use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use bind::{ArrayInfo, AxisArg};
use elem::DType;
use error::Error;
use layout::{Dim, Layout, MAX_OPS};
use reduce::{EmptyRows, Kind, Operand, Request, OUT, STAT_M, STAT_S, TEMP, WHERE, X};

/// The parsed optional arguments of the softmax family.
struct Options<'a, 'py> {
    keepdims: bool,
    temperature: Option<&'a Bound<'py, PyAny>>,
    where_: Option<&'a Bound<'py, PyAny>>,
    empty_rows: Option<&'a str>,
    out: Option<&'a Bound<'py, PyAny>>,
    dtype: Option<&'a Bound<'py, PyAny>>,
    stats: Option<(&'a Bound<'py, PyAny>, &'a Bound<'py, PyAny>)>,
}

fn input_dtype(name: &str, x: &ArrayInfo<'_>) -> PyResult<DType> {
    x.dtype.ok_or_else(|| {
        let d = x.descr.str().map(|s| s.to_string()).unwrap_or_default();
        PyTypeError::new_err(format!("{name} does not support arrays of dtype {d}"))
    })
}

/// The compute dtype, the result dtype and the result descriptor.
fn result_dtype<'py>(
    py: Python<'py>,
    src: DType,
    x: &ArrayInfo<'py>,
    dtype: Option<&Bound<'py, PyAny>>,
) -> PyResult<(DType, DType, Bound<'py, PyArrayDescr>)> {
    if let Some(d) = dtype.filter(|d| !d.is_none()) {
        let descr = PyArrayDescr::new(py, d)?;
        return match (descr.kind(), descr.itemsize()) {
            (b'f', 4) => Ok((DType::F32, DType::F32, numpy::dtype::<f32>(py))),
            (b'f', 8) => Ok((DType::F64, DType::F64, numpy::dtype::<f64>(py))),
            _ => Err(PyTypeError::new_err(format!(
                "dtype must be float32 or float64, got {}",
                descr.str()?
            ))),
        };
    }
    let result = src.result();
    let like = if x.swapped {
        x.descr.call_method1("newbyteorder", ("=",))?.cast_into()?
    } else {
        x.descr.clone()
    };
    Ok((src.compute(), result, bind::descr_for(py, result, &like)))
}

fn operand(a: &ArrayInfo<'_>) -> Operand {
    Operand {
        ptr: a.ptr,
        dtype: a.dtype.unwrap_or(DType::F64),
        swapped: a.swapped,
    }
}

/// Strides of an array over the full shape of x: `reduced_kept` marks axes the array holds
/// with length 1 (stride 0 there); `squeezed` means those axes are absent from its strides.
fn full_strides(a: &ArrayInfo<'_>, mask: &[bool], squeezed: bool) -> Vec<isize> {
    let mut it = a.strides.iter();
    mask.iter()
        .map(|&r| {
            if r {
                if !squeezed {
                    it.next();
                }
                0
            } else {
                *it.next().unwrap_or(&0)
            }
        })
        .collect()
}

fn family<'py>(
    py: Python<'py>,
    name: &str,
    kind: Kind,
    x: &Bound<'py, PyAny>,
    axis: AxisArg,
    o: Options<'_, 'py>,
) -> PyResult<Py<PyAny>> {
    let xi = bind::as_array(x)?;
    let src = input_dtype(name, &xi)?;
    let (compute, _result, descr) = result_dtype(py, src, &xi, o.dtype)?;
    let ndim = xi.shape.len();
    let mask = axis.mask(ndim)?;
    let kept: Vec<usize> = xi
        .shape
        .iter()
        .zip(&mask)
        .map(|(&n, &r)| if r { 1 } else { n })
        .collect();
    let squeezed: Vec<usize> = xi
        .shape
        .iter()
        .zip(&mask)
        .filter(|(_, &r)| !r)
        .map(|(&n, _)| n)
        .collect();
    let per_row = matches!(kind, Kind::LogSumExp | Kind::Stats);
    let out_shape: &[usize] = match kind {
        Kind::LogSumExp if !o.keepdims => &squeezed,
        Kind::LogSumExp | Kind::Stats => &kept,
        _ => &xi.shape,
    };
    let shape_t = || PyTuple::new(py, &xi.shape);
    let mask_t = || PyTuple::new(py, &mask);
    let wi = match o.where_.filter(|w| !w.is_none()) {
        Some(w) => Some(ArrayInfo::new(
            bind::helper(py, "broadcast_where", (w, shape_t()?))?.cast_into::<PyUntypedArray>()?,
        )),
        None => None,
    };
    let (temperature, ti) = match o.temperature {
        None => (1.0, None),
        Some(t) => match bind::scalar_temperature(t)? {
            Some(v) => (v, None),
            None => {
                let a = bind::helper(py, "broadcast_temperature", (t, shape_t()?, mask_t()?))?;
                match a.cast_into::<PyUntypedArray>() {
                    Ok(a) => (1.0, Some(ArrayInfo::new(a))),
                    Err(e) => (e.into_inner().extract::<f64>()?, None),
                }
            }
        },
    };
    let empty_rows = match o.empty_rows {
        None => EmptyRows::Default,
        Some("nan") => EmptyRows::Nan,
        Some("zero") => EmptyRows::Zero,
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "empty_rows must be None, 'nan' or 'zero', got {other:?}"
            )))
        }
    };
    let stats = match o.stats {
        Some((m, s)) => {
            let cd = bind::descr_for(py, compute, &descr);
            let conv = |v: &Bound<'py, PyAny>| -> PyResult<ArrayInfo<'py>> {
                Ok(ArrayInfo::new(
                    bind::helper(py, "broadcast_reduced", (v, shape_t()?, mask_t()?, &cd))?
                        .cast_into()?,
                ))
            };
            Some((conv(m)?, conv(s)?))
        }
        None => None,
    };
    // Outputs.
    let stat_descr = bind::descr_for(py, compute, &descr);
    let (user_out, mut outs): (bool, Vec<ArrayInfo<'py>>) =
        match (kind, o.out.filter(|v| !v.is_none())) {
            (Kind::Stats, _) => (
                false,
                vec![
                    ArrayInfo::new(bind::empty(py, &kept, &stat_descr)?),
                    ArrayInfo::new(bind::empty(py, &kept, &stat_descr)?),
                ],
            ),
            (_, Some(out)) => (true, vec![bind::check_out(out, out_shape, &descr)?]),
            (_, None) if per_row => (
                false,
                vec![ArrayInfo::new(bind::empty(py, out_shape, &descr)?)],
            ),
            (_, None) => (false, vec![ArrayInfo::new(bind::empty_like(&xi, &descr)?)]),
        };
    let user = user_out.then(|| outs[0].array.clone());
    let mut in_place = false;
    if user_out {
        let o0 = &outs[0];
        in_place = kind != Kind::LogSumExp && o0.same_view(&xi);
        let clash = (!in_place && o0.overlaps(&xi))
            || wi.as_ref().is_some_and(|w| o0.overlaps(w))
            || ti.as_ref().is_some_and(|t| o0.overlaps(t))
            || stats
                .as_ref()
                .is_some_and(|(m, s)| o0.overlaps(m) || o0.overlaps(s));
        if clash {
            // Overlap other than exact aliasing: compute into a fresh array, then copy.
            outs[0] = ArrayInfo::new(if per_row {
                bind::empty(py, out_shape, &descr)?
            } else {
                bind::empty_like(&xi, &descr)?
            });
        }
    }
    let mut ops = [Operand::NONE; MAX_OPS];
    ops[X] = operand(&xi);
    let squeeze_out = kind == Kind::LogSumExp && !o.keepdims;
    let mut strides: Vec<[isize; MAX_OPS]> = vec![[0; MAX_OPS]; ndim];
    let mut set = |k: usize, s: Vec<isize>| {
        for (row, v) in strides.iter_mut().zip(s) {
            row[k] = v;
        }
    };
    set(X, xi.strides.clone());
    if kind == Kind::Stats {
        ops[STAT_M] = operand(&outs[0]);
        ops[STAT_S] = operand(&outs[1]);
        set(STAT_M, full_strides(&outs[0], &mask, false));
        set(STAT_S, full_strides(&outs[1], &mask, false));
    } else {
        ops[OUT] = operand(&outs[0]);
        set(
            OUT,
            if per_row {
                full_strides(&outs[0], &mask, squeeze_out)
            } else {
                outs[0].strides.clone()
            },
        );
    }
    if let Some(w) = &wi {
        ops[WHERE] = operand(w);
        set(WHERE, w.strides.clone());
    }
    if let Some(t) = &ti {
        ops[TEMP] = operand(t);
        set(TEMP, full_strides(t, &mask, false));
    }
    if let Some((m, s)) = &stats {
        ops[STAT_M] = operand(m);
        ops[STAT_S] = operand(s);
        set(STAT_M, full_strides(m, &mask, false));
        set(STAT_S, full_strides(s, &mask, false));
    }
    let dims: Vec<Dim> = xi
        .shape
        .iter()
        .zip(&strides)
        .map(|(&len, s)| Dim { len, strides: *s })
        .collect();
    let req = Request {
        kind,
        layout: Layout::new(&dims, &mask, true),
        ops,
        has_where: wi.is_some(),
        temperature,
        per_row_temp: ti.is_some(),
        empty_rows,
        in_place,
        compute,
    };
    // An interrupt comes back as the pending KeyboardInterrupt; the inner result adds nothing.
    let _ = bind::run_released(py, xi.size(), |check| reduce::run(&req, check))?;
    if kind == Kind::Stats {
        let (m, s) = (outs[0].array.clone(), outs[1].array.clone());
        return Ok(PyTuple::new(py, [m.into_any(), s.into_any()])?
            .into_any()
            .unbind());
    }
    let res = outs.swap_remove(0).array;
    if let Some(u) = user {
        if !u.is(&res) {
            bind::helper(py, "copyto", (&u, &res))?;
        }
        return Ok(u.into_any().unbind());
    }
    if per_row && out_shape.is_empty() {
        return Ok(res.get_item(PyTuple::empty(py))?.unbind());
    }
    Ok(res.into_any().unbind())
}

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
    let kept: Vec<usize> = xi
        .shape
        .iter()
        .zip(&mask)
        .map(|(&n, &r)| if r { 1 } else { n })
        .collect();
    let squeezed: Vec<usize> = xi
        .shape
        .iter()
        .zip(&mask)
        .filter(|(_, &r)| !r)
        .map(|(&n, _)| n)
        .collect();
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
