//! The softmax family's binding: from Python arguments (already extracted by lib.rs) to a
//! checked `reduce::Request`, run with the GIL released, and the result handed back.

use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::bind::{self, ArrayInfo, AxisArg};
use crate::elem::DType;
use crate::layout::{Dim, Layout, MAX_OPS};
use crate::reduce::{self, EmptyRows, Kind, Operand, Request, OUT, STAT_M, STAT_S, TEMP, WHERE, X};

/// The parsed optional arguments of the softmax family.
pub(crate) struct Options<'a, 'py> {
    pub(crate) keepdims: bool,
    pub(crate) temperature: Option<&'a Bound<'py, PyAny>>,
    pub(crate) where_: Option<&'a Bound<'py, PyAny>>,
    pub(crate) empty_rows: Option<&'a str>,
    pub(crate) out: Option<&'a Bound<'py, PyAny>>,
    pub(crate) dtype: Option<&'a Bound<'py, PyAny>>,
    pub(crate) stats: Option<(&'a Bound<'py, PyAny>, &'a Bound<'py, PyAny>)>,
}

/// The reduced shape with the reduced axes kept (as length 1) and with them dropped.
pub(crate) fn reduced_shapes(shape: &[usize], mask: &[bool]) -> (Vec<usize>, Vec<usize>) {
    let kept = shape
        .iter()
        .zip(mask)
        .map(|(&n, &r)| if r { 1 } else { n })
        .collect();
    let squeezed = shape
        .iter()
        .zip(mask)
        .filter(|(_, &r)| !r)
        .map(|(&n, _)| n)
        .collect();
    (kept, squeezed)
}

pub(crate) fn input_dtype(name: &str, x: &ArrayInfo<'_>) -> PyResult<DType> {
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

pub(crate) fn operand(a: &ArrayInfo<'_>) -> Operand {
    Operand {
        ptr: a.ptr,
        dtype: a.dtype.unwrap_or(DType::F64),
        swapped: a.swapped,
    }
}

/// Strides of an array over the full shape of x: `reduced_kept` marks axes the array holds
/// with length 1 (stride 0 there); `squeezed` means those axes are absent from its strides.
pub(crate) fn full_strides(a: &ArrayInfo<'_>, mask: &[bool], squeezed: bool) -> Vec<isize> {
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

pub(crate) fn family<'py>(
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
    let (kept, squeezed) = reduced_shapes(&xi.shape, &mask);
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
