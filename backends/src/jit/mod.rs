//! The Cranelift host JIT: a scheduled loop program compiled to machine code in memory and run
//! in this process (`minnow run --engine jit`).
//!
//! Each loop function becomes one Cranelift function taking an array of its buffers'
//! pointers; intrinsics call `minnow_ir::runtime` through `extern "C"` shims, so the JIT, the
//! interpreter and the generated Rust compute with one definition. [`JitProgram::run`] binds
//! each step's arguments (inputs, outputs, constants, the arena at its planned offsets) as the
//! other backends do, through [`Program::step_args`].
//!
//! ```
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models/hello_world.tflite");
//! let graph = minnow_ir::import::tflite::import(&std::fs::read(path)?, "hello_world")?;
//! let program = minnow_ir::lower::lower(&graph)?;
//! let plan = minnow_passes::memory::MemoryPlanner::default().run(&program);
//! let mut jit = minnow_backends::jit::JitProgram::compile(&program, &plan)?;
//! jit.reset();
//! let input = vec![0u8; program.slot(program.inputs[0]).bytes()];
//! let outputs = jit.run(&[input.clone()])?;
//! let mut interp = minnow_ir::loops::interp::ProgramInterp::new(&program)?;
//! assert_eq!(outputs, interp.run(&[input])?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod address;
mod fixedpoint;
mod func;
mod intrinsics;
mod registers;
mod vector;
mod vector_requant;
mod widen;

use cranelift_codegen::ir::{AbiParam, InstBuilder, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};
use minnow_ir::loops::{
    Access, ArgPlace, BufId, BufferKind, Intrinsic, Program, SlotKind, StepArg,
};
use minnow_passes::memory::ArenaPlan;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Why a program cannot be JIT-compiled or run.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// Cranelift has no backend for this host, or refused a function.
    #[error("the Cranelift JIT cannot compile for this host: {0}; use --engine c or interp")]
    Codegen(String),
    /// The inputs do not fit the model.
    #[error("input {index} has {got} bytes, the model's has {expected}")]
    Input {
        /// The input.
        index: usize,
        /// Bytes given.
        got: usize,
        /// Bytes expected.
        expected: usize,
    },
}

/// A step's compiled function.
type StepFn = unsafe extern "C" fn(*const *mut u8);

/// Bytes kept 8-byte aligned.
#[derive(Clone, Debug)]
struct Aligned {
    words: Vec<u64>,
    len: usize,
}

impl Aligned {
    fn zeroed(len: usize) -> Aligned {
        Aligned {
            words: vec![0; len.div_ceil(8).max(1)],
            len,
        }
    }

    fn of(bytes: &[u8]) -> Aligned {
        let mut a = Aligned::zeroed(bytes.len());
        a.bytes_mut().copy_from_slice(bytes);
        a
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the words hold at least `len` bytes.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr() as *mut u8, self.len) }
    }

    fn ptr(&mut self) -> *mut u8 {
        self.words.as_mut_ptr() as *mut u8
    }
}

/// A program compiled for this host.
pub struct JitProgram {
    /// Owns the machine code the step functions point into.
    _module: JITModule,
    /// Each step's function, arguments, and which arguments take widened constants.
    steps: Vec<(StepFn, Vec<StepArg>, Vec<bool>)>,
    constants: HashMap<usize, Aligned>,
    /// The constants some step takes widened ([`widen`]), by slot.
    widened: HashMap<usize, Aligned>,
    states: Vec<(usize, Vec<u8>)>,
    offsets: Vec<Option<usize>>,
    input_bytes: Vec<usize>,
    output_bytes: Vec<usize>,
    arena: Aligned,
}

impl JitProgram {
    /// Compiles `program`, whose arena is laid out by `plan`.
    pub fn compile(program: &Program, plan: &ArenaPlan) -> Result<JitProgram, JitError> {
        let mut module = new_module()?;
        // Each function's code and the parameters it takes widened.
        let mut ids: HashMap<usize, (FuncId, HashSet<BufId>)> = HashMap::new();
        let mut ctx = module.make_context();
        let mut fctx = FunctionBuilderContext::new();
        for step in &program.steps {
            if ids.contains_key(&step.func) {
                continue;
            }
            let read_only = read_only_params(program, plan, step.func);
            let wide = widen::widened_params(program, step.func, &read_only);
            let params = Params {
                read_only,
                widened: wide.clone(),
            };
            let id = define(&mut module, &mut ctx, &mut fctx, program, step.func, params)?;
            ids.insert(step.func, (id, wide));
        }
        module
            .finalize_definitions()
            .map_err(|e| JitError::Codegen(e.to_string()))?;
        let mut widened = HashMap::new();
        let steps = program
            .steps
            .iter()
            .map(|s| {
                let (id, wide) = &ids[&s.func];
                let code = module.get_finalized_function(*id);
                // SAFETY: `define` gave every step function this signature.
                let f: StepFn = unsafe { std::mem::transmute(code) };
                let flags: Vec<bool> = program.funcs[s.func]
                    .params()
                    .map(|(id, _)| wide.contains(&id))
                    .collect();
                for (slot, _) in s.args.iter().zip(&flags).filter(|(_, w)| **w) {
                    if let SlotKind::Constant(bytes) = &program.slot(*slot).kind {
                        widened
                            .entry(slot.0)
                            .or_insert_with(|| Aligned::of(&widen::widened(bytes)));
                    }
                }
                (f, program.step_args(s), flags)
            })
            .collect();
        let mut constants = HashMap::new();
        let mut states = Vec::new();
        for (k, slot) in program.slots.iter().enumerate() {
            match &slot.kind {
                SlotKind::Constant(bytes) => {
                    constants.insert(k, Aligned::of(bytes));
                }
                SlotKind::State(init) => {
                    let bytes = init.clone().unwrap_or_else(|| vec![0; slot.bytes()]);
                    states.push((plan.offsets[k].expect("state slots are planned"), bytes));
                }
                _ => {}
            }
        }
        let sizes = |slots: &[minnow_ir::loops::SlotId]| {
            slots.iter().map(|s| program.slot(*s).bytes()).collect()
        };
        Ok(JitProgram {
            _module: module,
            steps,
            constants,
            widened,
            states,
            offsets: plan.offsets.clone(),
            input_bytes: sizes(&program.inputs),
            output_bytes: sizes(&program.outputs),
            arena: Aligned::zeroed(plan.arena_bytes),
        })
    }

    /// Sets the recurrent state to its initial value (call before the first run).
    pub fn reset(&mut self) {
        let arena = self.arena.bytes_mut();
        for (offset, bytes) in &self.states {
            arena[*offset..*offset + bytes.len()].copy_from_slice(bytes);
        }
    }

    /// One inference: `inputs[i]` holds input `i`'s bytes; returns each output's.
    pub fn run(&mut self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, JitError> {
        self.execute(inputs, None)
    }

    /// One inference as [`JitProgram::run`], also timing each step: the outputs, and the
    /// wall-clock time of every step in program order (to see which layers the host spends
    /// its time in; one run is noisy, so sum several).
    pub fn run_timed(
        &mut self,
        inputs: &[Vec<u8>],
    ) -> Result<(Vec<Vec<u8>>, Vec<Duration>), JitError> {
        let mut times = Vec::with_capacity(self.steps.len());
        let outputs = self.execute(inputs, Some(&mut times))?;
        Ok((outputs, times))
    }

    /// One inference, pushing each step's time to `times` if given.
    fn execute(
        &mut self,
        inputs: &[Vec<u8>],
        mut times: Option<&mut Vec<Duration>>,
    ) -> Result<Vec<Vec<u8>>, JitError> {
        for (index, expected) in self.input_bytes.iter().enumerate() {
            let got = inputs.get(index).map_or(0, Vec::len);
            if got != *expected {
                return Err(JitError::Input {
                    index,
                    got,
                    expected: *expected,
                });
            }
        }
        let mut ins: Vec<Aligned> = inputs.iter().map(|b| Aligned::of(b)).collect();
        let mut outs: Vec<Aligned> = self
            .output_bytes
            .iter()
            .map(|n| Aligned::zeroed(*n))
            .collect();
        let arena = self.arena.ptr();
        for (f, args, widened) in &self.steps {
            let pointers: Vec<*mut u8> = args
                .iter()
                .zip(widened)
                .map(|(a, wide)| {
                    let base = match a.place {
                        ArgPlace::Input(n) => ins[n].ptr(),
                        ArgPlace::Output(n) => outs[n].ptr(),
                        ArgPlace::Constant(slot) => {
                            let table = if *wide {
                                &mut self.widened
                            } else {
                                &mut self.constants
                            };
                            table
                                .get_mut(&slot.0)
                                .map_or(std::ptr::null_mut(), Aligned::ptr)
                        }
                        ArgPlace::Arena(slot) => {
                            let offset = self.offsets[slot.0].expect("arena slots are planned");
                            // SAFETY: the plan keeps every slot inside the arena.
                            unsafe { arena.add(offset) }
                        }
                    };
                    // SAFETY: a view lies inside its base (Program::verify).
                    unsafe { base.add(a.offset * a.elem.size()) }
                })
                .collect();
            let start = times.is_some().then(Instant::now);
            // SAFETY: the pointers cover each parameter's planned extent, as for the C backend.
            unsafe { f(pointers.as_ptr()) };
            if let (Some(times), Some(start)) = (times.as_deref_mut(), start) {
                times.push(start.elapsed());
            }
        }
        Ok(outs.iter_mut().map(|o| o.bytes_mut().to_vec()).collect())
    }
}

/// A JIT module for this host, with the intrinsics' shims registered.
fn new_module() -> Result<JITModule, JitError> {
    let codegen = |e: String| JitError::Codegen(e);
    let mut flags = settings::builder();
    flags
        .set("opt_level", "speed")
        .map_err(|e| codegen(e.to_string()))?;
    flags
        .set("is_pic", "false")
        .map_err(|e| codegen(e.to_string()))?;
    let mut isa = cranelift_native::builder().map_err(|e| codegen(e.to_string()))?;
    // With AVX-512DQ Cranelift multiplies widened `i32` lanes with `vpmullq` (three uops)
    // rather than `pmuldq` (one), which the requantization's products are.
    if cfg!(target_arch = "x86_64") {
        isa.set("has_avx512dq", "false")
            .map_err(|e| codegen(e.to_string()))?;
    }
    let isa = isa
        .finish(settings::Flags::new(flags))
        .map_err(|e| codegen(e.to_string()))?;
    let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
    for i in Intrinsic::ALL {
        builder.symbol(intrinsics::symbol(i), intrinsics::address(i));
    }
    Ok(JITModule::new(builder))
}

/// The read-only parameters of function `index` that no step calling it shares with its
/// output in `plan`.
fn read_only_params(program: &Program, plan: &ArenaPlan, index: usize) -> HashSet<BufId> {
    let func = &program.funcs[index];
    func.params()
        .enumerate()
        .filter(|(k, (_, decl))| {
            matches!(
                decl.kind,
                BufferKind::Param {
                    access: Access::Read,
                    ..
                }
            ) && !program
                .steps
                .iter()
                .zip(&plan.shared)
                .any(|(s, shared)| s.func == index && shared.is_some_and(|p| p.input == *k))
        })
        .map(|(_, (id, _))| id)
        .collect()
}

/// What the JIT knows of one function's parameters.
struct Params {
    /// Nothing writes them while the function runs ([`read_only_params`]).
    read_only: HashSet<BufId>,
    /// They hold widened constants ([`widen::widened_params`]).
    widened: HashSet<BufId>,
}

/// Translates and defines function `index` of `program`, with what `params` says of its
/// parameters.
fn define(
    module: &mut JITModule,
    ctx: &mut cranelift_codegen::Context,
    fctx: &mut FunctionBuilderContext,
    program: &Program,
    index: usize,
    params: Params,
) -> Result<FuncId, JitError> {
    let codegen = |e: String| JitError::Codegen(e);
    let func = &program.funcs[index];
    let ptr = module.target_config().pointer_type();
    module.clear_context(ctx);
    ctx.func.signature.params.push(AbiParam::new(ptr));
    ctx.func.name = UserFuncName::user(0, index as u32);
    let id = module
        .declare_function(
            &format!("step_{index}_{}", func.name),
            Linkage::Local,
            &ctx.func.signature,
        )
        .map_err(|e| codegen(e.to_string()))?;
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let args = b.block_params(entry)[0];
        let mut t = func::Translator {
            func,
            b,
            module,
            vars: HashMap::new(),
            bufs: HashMap::new(),
            calls: HashMap::new(),
            known: HashMap::new(),
            in_registers: registers::register_buffers(func, minnow_targets::host_simd128()),
            registers: HashMap::new(),
            read_only: params.read_only,
            widened: params.widened,
            depth: 0,
            depths: HashMap::new(),
        };
        t.bind_params(args);
        t.block(&func.body).map_err(codegen)?;
        t.b.ins().return_(&[]);
        let config = t.module.target_config();
        t.b.finalize(config);
    }
    module
        .define_function(id, ctx)
        .map_err(|e| codegen(format!("{}: {e:?}", func.name)))?;
    Ok(id)
}
