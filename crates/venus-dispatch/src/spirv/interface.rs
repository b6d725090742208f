//! A small SPIR-V reflection: the resource variables each entry point statically uses.
//!
//! Owns [`reflect`], which reads a module's word stream (bounds-checked, never panics; the
//! module need not have passed `spirv-val`) and returns, for every `OpEntryPoint` (execution
//! model, name), the descriptor resources its call tree references: global `OpVariable`s of
//! storage class `UniformConstant`, `Uniform` or `StorageBuffer` decorated with
//! `DescriptorSet` and `Binding`, with the [`DescriptorKind`] their type needs and their array
//! size. `PushConstant` variables are noted ([`EntryPoint::push_constants`]), nothing more.
//!
//! "Statically used" (Vulkan's term) is: the variable's id appears as an operand of an
//! instruction in a function reachable from the entry point through `OpFunctionCall`. Only
//! operand words that are ids count: the literals of the instructions that may carry them
//! (`OpLine`'s line numbers, `OpVariable`'s storage class, memory-access and image-operand
//! masks, `OpSwitch` cases, ...) are skipped, so that a literal that happens to equal an unused
//! variable's id does not make it used.
//!
//! Conservative on purpose (a refused valid application is worse than a missed invalid one):
//! what it cannot classify (an unknown type, a `Sampled = 0` image, a struct without
//! `Block`/`BufferBlock`) has `kind: None`, and an array length it cannot evaluate
//! (specialization constants, runtime arrays) has `count: None`; the pipeline check then only
//! asks for the set/binding and the stage.

use std::collections::{HashMap, HashSet};

/// SPIR-V's magic number (host word order; Vulkan passes `pCode` as `uint32_t` words).
const MAGIC: u32 = 0x0723_0203;
/// Words of the module header.
const HEADER_WORDS: usize = 5;

// Opcodes.
const OP_LINE: u16 = 8;
const OP_EXT_INST: u16 = 12;
const OP_ENTRY_POINT: u16 = 15;
const OP_TYPE_IMAGE: u16 = 25;
const OP_TYPE_SAMPLER: u16 = 26;
const OP_TYPE_SAMPLED_IMAGE: u16 = 27;
const OP_TYPE_ARRAY: u16 = 28;
const OP_TYPE_RUNTIME_ARRAY: u16 = 29;
const OP_TYPE_STRUCT: u16 = 30;
const OP_TYPE_POINTER: u16 = 32;
const OP_CONSTANT: u16 = 43;
const OP_FUNCTION: u16 = 54;
const OP_FUNCTION_END: u16 = 56;
const OP_FUNCTION_CALL: u16 = 57;
const OP_VARIABLE: u16 = 59;
const OP_LOAD: u16 = 61;
const OP_STORE: u16 = 62;
const OP_COPY_MEMORY: u16 = 63;
const OP_COPY_MEMORY_SIZED: u16 = 64;
const OP_ARRAY_LENGTH: u16 = 68;
const OP_DECORATE: u16 = 71;
const OP_GROUP_DECORATE: u16 = 74;
const OP_VECTOR_SHUFFLE: u16 = 79;
const OP_COMPOSITE_EXTRACT: u16 = 81;
const OP_COMPOSITE_INSERT: u16 = 82;
const OP_LOOP_MERGE: u16 = 246;
const OP_SELECTION_MERGE: u16 = 247;
const OP_BRANCH_CONDITIONAL: u16 = 250;
const OP_SWITCH: u16 = 251;
const OP_LIFETIME_START: u16 = 256;
const OP_LIFETIME_STOP: u16 = 257;
const OP_EXT_INST_WITH_FORWARD_REFS: u16 = 4433;
const OP_COOPERATIVE_MATRIX_LOAD_KHR: u16 = 4457;
const OP_COOPERATIVE_MATRIX_STORE_KHR: u16 = 4458;
const OP_TYPE_ACCELERATION_STRUCTURE: u16 = 5341;
const OP_COOPERATIVE_MATRIX_LOAD_NV: u16 = 5359;
const OP_COOPERATIVE_MATRIX_STORE_NV: u16 = 5360;

// Decorations.
const DEC_BLOCK: u32 = 2;
const DEC_BUFFER_BLOCK: u32 = 3;
const DEC_BINDING: u32 = 33;
const DEC_DESCRIPTOR_SET: u32 = 34;

// Storage classes.
const SC_UNIFORM_CONSTANT: u32 = 0;
const SC_UNIFORM: u32 = 2;
const SC_PUSH_CONSTANT: u32 = 9;
const SC_STORAGE_BUFFER: u32 = 12;

// Image dimensionalities and `Sampled` values.
const DIM_BUFFER: u32 = 5;
const DIM_SUBPASS_DATA: u32 = 6;
const SAMPLED_WITH_SAMPLER: u32 = 1;
const SAMPLED_STORAGE: u32 = 2;

/// SPIR-V execution models with a Vulkan shader stage (`VkShaderStageFlagBits`), and their names.
const STAGES: &[(u32, u32, &str)] = &[
    (0x1, 0, "Vertex"),
    (0x2, 1, "TessellationControl"),
    (0x4, 2, "TessellationEvaluation"),
    (0x8, 3, "Geometry"),
    (0x10, 4, "Fragment"),
    (0x20, 5, "GLCompute"),
    (0x40, 5364, "TaskEXT"),
    (0x80, 5365, "MeshEXT"),
];

/// The execution model of the shader stage `stage` (one `VkShaderStageFlagBits`), if it has one
/// here.
pub fn model_of_stage(stage: u32) -> Option<u32> {
    STAGES.iter().find(|s| s.0 == stage).map(|s| s.1)
}

/// The name of execution model `model` (for messages).
pub fn model_name(model: u32) -> String {
    match STAGES.iter().find(|s| s.1 == model) {
        Some(s) => s.2.to_owned(),
        None => format!("execution model {model}"),
    }
}

// `VkDescriptorType` values.
const DT_SAMPLER: i32 = 0;
const DT_COMBINED_IMAGE_SAMPLER: i32 = 1;
const DT_SAMPLED_IMAGE: i32 = 2;
const DT_STORAGE_IMAGE: i32 = 3;
const DT_UNIFORM_TEXEL_BUFFER: i32 = 4;
const DT_STORAGE_TEXEL_BUFFER: i32 = 5;
const DT_UNIFORM_BUFFER: i32 = 6;
const DT_STORAGE_BUFFER: i32 = 7;
const DT_UNIFORM_BUFFER_DYNAMIC: i32 = 8;
const DT_STORAGE_BUFFER_DYNAMIC: i32 = 9;
const DT_INPUT_ATTACHMENT: i32 = 10;
/// `VK_DESCRIPTOR_TYPE_INLINE_UNIFORM_BLOCK`: its `descriptorCount` is a byte size.
pub const DT_INLINE_UNIFORM_BLOCK: i32 = 1_000_138_000;
const DT_ACCELERATION_STRUCTURE_KHR: i32 = 1_000_150_000;
const DT_ACCELERATION_STRUCTURE_NV: i32 = 1_000_165_000;
/// `VK_DESCRIPTOR_TYPE_MUTABLE_EXT`: any of a list of types, so any kind is accepted.
pub const DT_MUTABLE_EXT: i32 = 1_000_351_000;
const DT_SAMPLE_WEIGHT_IMAGE_QCOM: i32 = 1_000_440_000;
const DT_BLOCK_MATCH_IMAGE_QCOM: i32 = 1_000_440_001;

/// The descriptor a resource variable needs (the Vulkan spec's "Shader Resource and Descriptor
/// Type Correspondence").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescriptorKind {
    Sampler,
    SampledImage,
    StorageImage,
    CombinedImageSampler,
    UniformTexelBuffer,
    StorageTexelBuffer,
    UniformBuffer,
    StorageBuffer,
    InputAttachment,
    AccelerationStructure,
}

impl DescriptorKind {
    /// The `VkDescriptorType`s whose bindings can back this kind (besides `MUTABLE_EXT` and
    /// types this table does not know, which [`Self::accepts`] lets through).
    fn types(self) -> &'static [i32] {
        match self {
            Self::Sampler => &[DT_SAMPLER, DT_COMBINED_IMAGE_SAMPLER],
            Self::SampledImage => &[
                DT_SAMPLED_IMAGE,
                DT_COMBINED_IMAGE_SAMPLER,
                DT_SAMPLE_WEIGHT_IMAGE_QCOM,
                DT_BLOCK_MATCH_IMAGE_QCOM,
            ],
            Self::StorageImage => &[DT_STORAGE_IMAGE],
            Self::CombinedImageSampler => &[DT_COMBINED_IMAGE_SAMPLER],
            Self::UniformTexelBuffer => &[DT_UNIFORM_TEXEL_BUFFER],
            Self::StorageTexelBuffer => &[DT_STORAGE_TEXEL_BUFFER],
            Self::UniformBuffer => &[
                DT_UNIFORM_BUFFER,
                DT_UNIFORM_BUFFER_DYNAMIC,
                DT_INLINE_UNIFORM_BLOCK,
            ],
            Self::StorageBuffer => &[DT_STORAGE_BUFFER, DT_STORAGE_BUFFER_DYNAMIC],
            Self::InputAttachment => &[DT_INPUT_ATTACHMENT],
            Self::AccelerationStructure => {
                &[DT_ACCELERATION_STRUCTURE_KHR, DT_ACCELERATION_STRUCTURE_NV]
            }
        }
    }

    /// Whether a binding of `VkDescriptorType` `ty` can back a variable of this kind. Types
    /// outside the core/known-extension table (and `MUTABLE_EXT`) are accepted: unsure means
    /// no refusal.
    pub fn accepts(self, ty: i32) -> bool {
        const KNOWN: &[i32] = &[
            DT_SAMPLER,
            DT_COMBINED_IMAGE_SAMPLER,
            DT_SAMPLED_IMAGE,
            DT_STORAGE_IMAGE,
            DT_UNIFORM_TEXEL_BUFFER,
            DT_STORAGE_TEXEL_BUFFER,
            DT_UNIFORM_BUFFER,
            DT_STORAGE_BUFFER,
            DT_UNIFORM_BUFFER_DYNAMIC,
            DT_STORAGE_BUFFER_DYNAMIC,
            DT_INPUT_ATTACHMENT,
            DT_INLINE_UNIFORM_BLOCK,
            DT_ACCELERATION_STRUCTURE_KHR,
            DT_ACCELERATION_STRUCTURE_NV,
            DT_SAMPLE_WEIGHT_IMAGE_QCOM,
            DT_BLOCK_MATCH_IMAGE_QCOM,
        ];
        !KNOWN.contains(&ty) || self.types().contains(&ty)
    }

    /// The kind's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sampler => "sampler",
            Self::SampledImage => "sampled image",
            Self::StorageImage => "storage image",
            Self::CombinedImageSampler => "combined image sampler",
            Self::UniformTexelBuffer => "uniform texel buffer",
            Self::StorageTexelBuffer => "storage texel buffer",
            Self::UniformBuffer => "uniform buffer",
            Self::StorageBuffer => "storage buffer",
            Self::InputAttachment => "input attachment",
            Self::AccelerationStructure => "acceleration structure",
        }
    }
}

/// One descriptor resource an entry point statically uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The variable's result id (for messages).
    pub variable: u32,
    pub set: u32,
    pub binding: u32,
    /// `None` when the type was not classified: only presence and stage are checked.
    pub kind: Option<DescriptorKind>,
    /// The descriptors it needs: 1 for a non-array, the array length (product for arrays of
    /// arrays); `None` when not known (runtime arrays, specialization constants).
    pub count: Option<u32>,
}

/// One `OpEntryPoint` and the resources its call tree uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPoint {
    /// The SPIR-V `ExecutionModel`.
    pub model: u32,
    /// The name as its bytes (without the NUL).
    pub name: Box<[u8]>,
    /// Sorted by (set, binding, variable).
    pub resources: Vec<Resource>,
    /// Whether it uses a `PushConstant` variable.
    pub push_constants: bool,
}

/// A module's reflected interface: every entry point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub entry_points: Vec<EntryPoint>,
}

impl Interface {
    /// The entry point `name` of execution model `model`.
    pub fn entry_point(&self, model: u32, name: &[u8]) -> Option<&EntryPoint> {
        self.entry_points
            .iter()
            .find(|e| e.model == model && &*e.name == name)
    }
}

/// Why a word stream could not be reflected.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ReflectError {
    #[error("{0} words are too few for a SPIR-V header")]
    TooShort(usize),
    #[error("magic number {0:#010x} is not SPIR-V's")]
    Magic(u32),
    #[error("instruction at word {at} has word count 0")]
    ZeroWordCount { at: usize },
    #[error("instruction at word {at} ({count} words) runs past the end ({len} words)")]
    Truncated { at: usize, count: usize, len: usize },
    #[error("instruction at word {at} (opcode {op}) is shorter than its operands")]
    Short { at: usize, op: u16 },
}

/// One instruction: its opcode and all its words (word 0 included).
#[derive(Clone, Copy)]
struct Inst<'a> {
    op: u16,
    at: usize,
    w: &'a [u32],
}

impl Inst<'_> {
    /// Word `i`, or [`ReflectError::Short`].
    fn word(&self, i: usize) -> Result<u32, ReflectError> {
        self.w.get(i).copied().ok_or(ReflectError::Short {
            at: self.at,
            op: self.op,
        })
    }
}

/// The module's instructions after the header.
fn instructions(code: &[u32]) -> Result<Vec<Inst<'_>>, ReflectError> {
    if code.len() < HEADER_WORDS {
        return Err(ReflectError::TooShort(code.len()));
    }
    if code[0] != MAGIC {
        return Err(ReflectError::Magic(code[0]));
    }
    let mut out = Vec::new();
    let mut at = HEADER_WORDS;
    while at < code.len() {
        let count = (code[at] >> 16) as usize;
        if count == 0 {
            return Err(ReflectError::ZeroWordCount { at });
        }
        let w = code.get(at..at + count).ok_or(ReflectError::Truncated {
            at,
            count,
            len: code.len(),
        })?;
        out.push(Inst {
            op: (code[at] & 0xffff) as u16,
            at,
            w,
        });
        at += count;
    }
    Ok(out)
}

/// The words of `inst` that are ids another instruction defined (see the module doc: literals
/// are left out; instructions that never take a pointer give nothing).
fn referenced_ids<'a>(inst: &Inst<'a>) -> &'a [u32] {
    let w = inst.w;
    let range = |from: usize, to: usize| w.get(from..to.min(w.len())).unwrap_or(&[]);
    match inst.op {
        OP_LINE => range(1, 2),
        // The set, then (after the instruction number literal) the operands.
        OP_EXT_INST | OP_EXT_INST_WITH_FORWARD_REFS => range(5, w.len()),
        OP_LOAD | OP_ARRAY_LENGTH | OP_COMPOSITE_EXTRACT => range(3, 4),
        OP_COOPERATIVE_MATRIX_LOAD_KHR | OP_COOPERATIVE_MATRIX_LOAD_NV => range(3, 4),
        OP_STORE | OP_COPY_MEMORY => range(1, 3),
        OP_COOPERATIVE_MATRIX_STORE_KHR | OP_COOPERATIVE_MATRIX_STORE_NV => range(1, 3),
        OP_COPY_MEMORY_SIZED => range(1, 4),
        OP_VECTOR_SHUFFLE | OP_COMPOSITE_INSERT => range(3, 5),
        OP_VARIABLE => range(4, 5),
        OP_LIFETIME_START | OP_LIFETIME_STOP => range(1, 2),
        OP_SWITCH | OP_BRANCH_CONDITIONAL => range(1, 2),
        OP_LOOP_MERGE | OP_SELECTION_MERGE => &[],
        // Image sampling, fetches and queries (OpSampledImage..OpImageQuerySamples, the
        // sparse forms): images and coordinates are values, never the variable; their image
        // operands mix literals in.
        86..=107 | 305..=316 | 320 => &[],
        // Group operations (a GroupOperation literal; values only).
        261..=270 | 333..=366 => &[],
        _ => range(1, w.len()),
    }
}

/// A type, as far as resource classification needs it.
#[derive(Clone, Copy)]
enum Type {
    Sampler,
    Image { dim: u32, sampled: u32 },
    SampledImage,
    AccelerationStructure,
    Array { element: u32, length: u32 },
    RuntimeArray { element: u32 },
    Struct,
    Pointer { pointee: u32 },
}

/// The decorations reflection looks at.
#[derive(Clone, Copy, Default)]
struct Decorations {
    set: Option<u32>,
    binding: Option<u32>,
    block: bool,
    buffer_block: bool,
}

impl Decorations {
    fn apply(&mut self, decoration: u32, value: Option<u32>) {
        match decoration {
            DEC_BLOCK => self.block = true,
            DEC_BUFFER_BLOCK => self.buffer_block = true,
            DEC_BINDING => self.binding = value,
            DEC_DESCRIPTOR_SET => self.set = value,
            _ => {}
        }
    }
}

/// A function: the interface variables it references and the functions it calls.
#[derive(Default)]
struct Function {
    uses: Vec<u32>,
    calls: Vec<u32>,
}

/// Everything the first pass collects.
#[derive(Default)]
struct Module {
    entry_points: Vec<(u32, u32, Box<[u8]>)>,
    decorations: HashMap<u32, Decorations>,
    types: HashMap<u32, Type>,
    /// 32- and 64-bit `OpConstant` values (array lengths).
    constants: HashMap<u32, u64>,
    /// Global variables of the interface storage classes: id -> (pointer type, class).
    variables: HashMap<u32, (u32, u32)>,
    functions: HashMap<u32, Function>,
}

/// Reflects `code` (see the module doc).
pub fn reflect(code: &[u32]) -> Result<Interface, ReflectError> {
    let mut m = Module::default();
    let mut current: Option<u32> = None;
    for inst in instructions(code)? {
        if let Some(f) = current {
            match inst.op {
                OP_FUNCTION_END => current = None,
                _ => m.function_body(f, &inst)?,
            }
            continue;
        }
        m.global(&inst)?;
        if inst.op == OP_FUNCTION {
            let id = inst.word(2)?;
            m.functions.entry(id).or_default();
            current = Some(id);
        }
    }
    let entry_points = m
        .entry_points
        .iter()
        .map(|(model, f, name)| m.entry_point(*model, *f, name.clone()))
        .collect();
    Ok(Interface { entry_points })
}

/// An `OpEntryPoint`'s name: the literal string from word 3 up to its NUL.
fn literal_string(words: &[u32]) -> Box<[u8]> {
    let mut bytes = Vec::new();
    for w in words {
        for b in w.to_le_bytes() {
            if b == 0 {
                return bytes.into();
            }
            bytes.push(b);
        }
    }
    bytes.into()
}

impl Module {
    /// An instruction outside any function.
    fn global(&mut self, inst: &Inst<'_>) -> Result<(), ReflectError> {
        let w = |i| inst.word(i);
        match inst.op {
            OP_ENTRY_POINT => {
                let name = literal_string(inst.w.get(3..).unwrap_or(&[]));
                self.entry_points.push((w(1)?, w(2)?, name));
            }
            OP_DECORATE => {
                let value = inst.w.get(3).copied();
                self.decorations
                    .entry(w(1)?)
                    .or_default()
                    .apply(w(2)?, value);
            }
            OP_GROUP_DECORATE => {
                let group = self.decorations.get(&w(1)?).copied().unwrap_or_default();
                for &target in inst.w.get(2..).unwrap_or(&[]) {
                    let d = self.decorations.entry(target).or_default();
                    d.set = d.set.or(group.set);
                    d.binding = d.binding.or(group.binding);
                    d.block |= group.block;
                    d.buffer_block |= group.buffer_block;
                }
            }
            OP_TYPE_SAMPLER => {
                self.types.insert(w(1)?, Type::Sampler);
            }
            OP_TYPE_SAMPLED_IMAGE => {
                self.types.insert(w(1)?, Type::SampledImage);
            }
            OP_TYPE_ACCELERATION_STRUCTURE => {
                self.types.insert(w(1)?, Type::AccelerationStructure);
            }
            OP_TYPE_STRUCT => {
                self.types.insert(w(1)?, Type::Struct);
            }
            OP_TYPE_IMAGE => {
                let image = Type::Image {
                    dim: w(3)?,
                    sampled: w(7)?,
                };
                self.types.insert(w(1)?, image);
            }
            OP_TYPE_ARRAY => {
                let (element, length) = (w(2)?, w(3)?);
                self.types.insert(w(1)?, Type::Array { element, length });
            }
            OP_TYPE_RUNTIME_ARRAY => {
                let element = w(2)?;
                self.types.insert(w(1)?, Type::RuntimeArray { element });
            }
            OP_TYPE_POINTER => {
                let pointee = w(3)?;
                self.types.insert(w(1)?, Type::Pointer { pointee });
            }
            OP_CONSTANT => {
                let value = match inst.w.len() {
                    4 => u64::from(w(3)?),
                    5 => u64::from(w(3)?) | u64::from(w(4)?) << 32,
                    _ => return Ok(()),
                };
                self.constants.insert(w(2)?, value);
            }
            OP_VARIABLE => {
                let class = w(3)?;
                if matches!(
                    class,
                    SC_UNIFORM_CONSTANT | SC_UNIFORM | SC_STORAGE_BUFFER | SC_PUSH_CONSTANT
                ) {
                    self.variables.insert(w(2)?, (w(1)?, class));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// An instruction inside function `f`.
    fn function_body(&mut self, f: u32, inst: &Inst<'_>) -> Result<(), ReflectError> {
        let callee = match inst.op {
            OP_FUNCTION_CALL => Some(inst.word(3)?),
            _ => None,
        };
        let uses: Vec<u32> = referenced_ids(inst)
            .iter()
            .copied()
            .filter(|id| self.variables.contains_key(id))
            .collect();
        let func = self.functions.entry(f).or_default();
        func.calls.extend(callee);
        func.uses.extend(uses);
        Ok(())
    }

    /// The variables the call tree of function `root` references.
    fn used_by(&self, root: u32) -> HashSet<u32> {
        let mut seen = HashSet::from([root]);
        let mut todo = vec![root];
        let mut used = HashSet::new();
        while let Some(f) = todo.pop() {
            let Some(func) = self.functions.get(&f) else {
                continue;
            };
            used.extend(func.uses.iter().copied());
            for &c in &func.calls {
                if seen.insert(c) {
                    todo.push(c);
                }
            }
        }
        used
    }

    fn entry_point(&self, model: u32, function: u32, name: Box<[u8]>) -> EntryPoint {
        let mut resources = Vec::new();
        let mut push_constants = false;
        for v in self.used_by(function) {
            let Some(&(pointer, class)) = self.variables.get(&v) else {
                continue;
            };
            if class == SC_PUSH_CONSTANT {
                push_constants = true;
                continue;
            }
            let d = self.decorations.get(&v).copied().unwrap_or_default();
            let (Some(set), Some(binding)) = (d.set, d.binding) else {
                continue;
            };
            let (kind, count) = self.classify(pointer, class);
            resources.push(Resource {
                variable: v,
                set,
                binding,
                kind,
                count,
            });
        }
        resources.sort_by_key(|r| (r.set, r.binding, r.variable));
        EntryPoint {
            model,
            name,
            resources,
            push_constants,
        }
    }

    /// The kind and descriptor count of a variable of pointer type `pointer` in `class`.
    fn classify(&self, pointer: u32, class: u32) -> (Option<DescriptorKind>, Option<u32>) {
        let Some(&Type::Pointer { pointee }) = self.types.get(&pointer) else {
            return (None, None);
        };
        let mut ty = pointee;
        let mut count = Some(1u32);
        // Arrays of arrays multiply; a bound on the loop keeps a malformed cycle finite.
        for _ in 0..16 {
            match self.types.get(&ty) {
                Some(&Type::Array { element, length }) => {
                    let n = self.constants.get(&length).copied();
                    count = match (count, n.and_then(|n| u32::try_from(n).ok())) {
                        (Some(c), Some(n)) => c.checked_mul(n),
                        _ => None,
                    };
                    ty = element;
                }
                Some(&Type::RuntimeArray { element }) => {
                    count = None;
                    ty = element;
                }
                _ => break,
            }
        }
        (self.kind_of(ty, class), count)
    }

    fn kind_of(&self, ty: u32, class: u32) -> Option<DescriptorKind> {
        use DescriptorKind as K;
        match *self.types.get(&ty)? {
            Type::Sampler => Some(K::Sampler),
            Type::SampledImage => Some(K::CombinedImageSampler),
            Type::AccelerationStructure => Some(K::AccelerationStructure),
            Type::Image { dim, sampled } => match (dim, sampled) {
                (DIM_SUBPASS_DATA, _) => Some(K::InputAttachment),
                (DIM_BUFFER, SAMPLED_WITH_SAMPLER) => Some(K::UniformTexelBuffer),
                (DIM_BUFFER, SAMPLED_STORAGE) => Some(K::StorageTexelBuffer),
                (DIM_BUFFER, _) => None,
                (_, SAMPLED_WITH_SAMPLER) => Some(K::SampledImage),
                (_, SAMPLED_STORAGE) => Some(K::StorageImage),
                _ => None,
            },
            Type::Struct => {
                let d = self.decorations.get(&ty).copied().unwrap_or_default();
                match class {
                    SC_STORAGE_BUFFER if d.block => Some(K::StorageBuffer),
                    SC_UNIFORM if d.buffer_block => Some(K::StorageBuffer),
                    SC_UNIFORM if d.block => Some(K::UniformBuffer),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spirv::testdata::{testapp_shader as shader, words};
    use DescriptorKind as K;

    /// (set, binding, kind, count) of an entry point's resources.
    fn summary(e: &EntryPoint) -> Vec<(u32, u32, Option<K>, Option<u32>)> {
        e.resources
            .iter()
            .map(|r| (r.set, r.binding, r.kind, r.count))
            .collect()
    }

    #[test]
    fn the_test_programs_shaders_reflect_as_their_sources_declare() {
        let sb = Some(K::StorageBuffer);
        let two_buffers = vec![(0, 0, sb, Some(1)), (0, 1, sb, Some(1))];
        let cases = [
            (
                "lcg.comp",
                shader!("lcg.comp.spv"),
                5,
                vec![(0, 0, sb, Some(1))],
                true,
            ),
            (
                "op.comp",
                shader!("op.comp.spv"),
                5,
                vec![(0, 0, sb, Some(1))],
                true,
            ),
            (
                "saxpy.comp",
                shader!("saxpy.comp.spv"),
                5,
                two_buffers.clone(),
                true,
            ),
            (
                "scan_add.comp",
                shader!("scan_add.comp.spv"),
                5,
                two_buffers.clone(),
                true,
            ),
            (
                "scan_block.comp",
                shader!("scan_block.comp.spv"),
                5,
                two_buffers.clone(),
                true,
            ),
            ("sum.comp", shader!("sum.comp.spv"), 5, two_buffers, true),
            (
                "textured.vert",
                shader!("textured.vert.spv"),
                0,
                vec![],
                false,
            ),
            (
                "textured.frag",
                shader!("textured.frag.spv"),
                4,
                vec![(0, 0, Some(K::CombinedImageSampler), Some(1))],
                false,
            ),
        ];
        for (name, code, model, want, push) in cases {
            let iface = reflect(&code).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(iface.entry_points.len(), 1, "{name}");
            let e = iface.entry_point(model, b"main").expect(name);
            assert_eq!(summary(e), want, "{name}");
            assert_eq!(e.push_constants, push, "{name}");
            assert!(iface.entry_point(model, b"mai").is_none(), "{name}");
            assert!(iface.entry_point(model + 1, b"main").is_none(), "{name}");
        }
    }

    const MODULE: &[u8] = include_bytes!("testdata/interface.spv");

    #[test]
    fn call_trees_kinds_and_counts() {
        let iface = reflect(&words(MODULE)).unwrap();
        let main = iface.entry_point(5, b"main").unwrap();
        assert_eq!(
            summary(main),
            vec![
                (0, 0, Some(K::UniformBuffer), Some(1)),
                // Used in `leaf`, which `helper` calls, which `main` calls.
                (0, 1, Some(K::StorageBuffer), Some(1)),
                (2, 0, Some(K::Sampler), Some(4)),
                (2, 1, Some(K::SampledImage), None), // runtime array
                (2, 2, Some(K::SampledImage), None), // specialization-constant length
                (3, 0, Some(K::UniformTexelBuffer), Some(1)),
                (3, 1, Some(K::StorageTexelBuffer), Some(1)),
            ]
        );
        assert!(main.push_constants);
        // `other` reaches only the storage image (through `leaf2`); set 9 is used by nobody,
        // although main's OpLine has its id (16) as the line number.
        let other = iface.entry_point(5, b"other").unwrap();
        assert_eq!(summary(other), vec![(1, 0, Some(K::StorageImage), Some(1))]);
        assert!(!other.push_constants);
        assert!(iface
            .entry_points
            .iter()
            .all(|e| e.resources.iter().all(|r| r.set != 9)));
    }

    #[test]
    fn an_id_operand_is_a_use_where_a_literal_is_not() {
        let mut code = words(MODULE);
        // Replace `OpLine %file 16 0` by `%100 = OpCopyObject %ptr_simg %unused` (same length).
        let line = (0..code.len())
            .find(|&i| code[i] == (4 << 16 | u32::from(OP_LINE)) && code[i + 2] == 16)
            .expect("the OpLine");
        let unused = 16;
        let ptr_simg = 46;
        code[line..line + 4].copy_from_slice(&[4 << 16 | 83, ptr_simg, 100, unused]);
        let iface = reflect(&code).unwrap();
        let main = iface.entry_point(5, b"main").unwrap();
        assert!(main
            .resources
            .iter()
            .any(|r| (r.set, r.binding, r.kind) == (9, 9, Some(K::StorageImage))));
        assert!(iface.entry_point(5, b"other").unwrap().resources.len() == 1);
    }

    #[test]
    fn a_changed_descriptor_set_is_reported_as_written() {
        // The fuzz finding: saxpy with `OpDecorate %buf DescriptorSet 47`.
        let mut code = shader!("saxpy.comp.spv");
        let at = (0..code.len())
            .find(|&i| {
                code[i] == (4 << 16 | u32::from(OP_DECORATE)) && code[i + 2] == DEC_DESCRIPTOR_SET
            })
            .unwrap();
        code[at + 3] = 47;
        let iface = reflect(&code).unwrap();
        let sets: Vec<u32> = iface.entry_points[0]
            .resources
            .iter()
            .map(|r| r.set)
            .collect();
        assert_eq!(sets, vec![0, 47]);
    }

    #[test]
    fn malformed_streams_are_errors_never_panics() {
        let code = shader!("saxpy.comp.spv");
        assert_eq!(reflect(&code[..3]), Err(ReflectError::TooShort(3)));
        let mut bad = code.clone();
        bad[0] = 0x0302_2307;
        assert_eq!(reflect(&bad), Err(ReflectError::Magic(0x0302_2307)));
        let mut bad = code.clone();
        bad[5] = 0;
        assert_eq!(reflect(&bad), Err(ReflectError::ZeroWordCount { at: 5 }));
        // Every truncation, and many random corruptions, end in a value.
        let mut ok = 0;
        for len in 0..code.len() {
            ok += usize::from(reflect(&code[..len]).is_ok());
        }
        assert!(ok < code.len());
        let mut seed = 0x9e37_79b9_u32;
        for _ in 0..2000 {
            let mut bad = words(MODULE);
            for _ in 0..4 {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let i = 5 + seed as usize % (bad.len() - 5);
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                bad[i] ^= seed;
            }
            let _ = reflect(&bad);
        }
    }
}
