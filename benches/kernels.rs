//! Kernel micro-benchmarks on L1/L2-resident data, per ISA: `cargo bench --bench kernels`.
//! Prints nanoseconds per element; no assertions (speed claims live in the Python suite).

use std::hint::black_box;
use std::time::Instant;

use softmax_rs::elem::Float;
use softmax_rs::kernels::argmax::argmax_row;
use softmax_rs::kernels::row;
use softmax_rs::kernels::shift::Unit;
use softmax_rs::simd::{self, Isa, Job, Simd};

const N: usize = 8192;
const REPS: usize = 2000;

struct Bench {
    x: Vec<f32>,
    out: std::sync::Mutex<Vec<f32>>,
    which: usize,
}

impl Job for Bench {
    #[inline(always)]
    fn run<S: Simd>(&self, _task: usize) {
        let mut o = self.out.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..REPS {
            match self.which {
                0 => {
                    for (o, &v) in o.iter_mut().zip(&self.x) {
                        *o = <f32 as Float>::exp::<S>(v, 0.0);
                    }
                }
                1 => {
                    black_box(row::max(&self.x));
                }
                2 => {
                    let m = row::max(&self.x);
                    let s =
                        row::sum_exp_into::<f32, S, Unit, false>(&self.x, m, Unit, &mut o, None);
                    row::scale::<f32, S>(&mut o, <f32 as Float>::recip(s.value()));
                }
                3 => {
                    black_box(argmax_row::<f32, S>(&self.x));
                }
                4 => {
                    let m = row::max(&self.x);
                    black_box(row::sum_exp::<f32, S, Unit, false>(&self.x, m, Unit, None));
                }
                _ => {
                    let (m, min) = row::max_min_portable(&self.x);
                    let ls = (0.5, 1e-17);
                    row::log_shift::<f32, S, Unit>(&self.x, m, min, Unit, ls, &mut o);
                }
            }
        }
        black_box(&mut *o);
    }
}

fn main() {
    let x: Vec<f32> = (0..N).map(|i| ((i * 7919) % 1000) as f32 * -0.01).collect();
    let names = [
        "exp",
        "max",
        "softmax row",
        "argmax row",
        "sum_exp",
        "log_shift",
    ];
    for isa in Isa::available() {
        simd::select(isa);
        for (which, name) in names.iter().enumerate() {
            let job = Bench {
                x: x.clone(),
                out: std::sync::Mutex::new(vec![0.0; N]),
                which,
            };
            simd::dispatch(&job, 0);
            let t = Instant::now();
            simd::dispatch(&job, 0);
            let ns = t.elapsed().as_nanos() as f64 / (N * REPS) as f64;
            println!("{:8} {:12} {ns:.3} ns/element", isa.name(), name);
        }
    }
}
