//! One source for every code a shader shares with Rust: each enum below generates the WGSL
//! constants that name its variants (`const UNARY_RELU: u32 = 7u;`), and the shader registry
//! prepends them to every shader. Shaders write the names, never the numbers.

/// A Rust enum whose variants WGSL code names by generated constants.
pub trait WgslEnum: Copy + std::fmt::Debug + 'static {
    /// The constants' common prefix (`UNARY` for `UNARY_RELU`).
    const PREFIX: &'static str;
    /// Every variant, in code order.
    const ALL: &'static [Self];
    /// The value a shader sees.
    fn code(self) -> u32;
    /// The WGSL constant naming this variant.
    fn wgsl_name(self) -> String {
        format!("{}_{}", Self::PREFIX, screaming_snake(&format!("{self:?}")))
    }
    /// `const NAME: u32 = code;` for every variant.
    fn wgsl_constants() -> String {
        Self::ALL.iter().map(|v| format!("const {}: u32 = {}u;\n", v.wgsl_name(), v.code())).collect()
    }
    /// The variant with this code, or an error naming the codes accepted.
    fn from_code(code: u32) -> Result<Self, String> {
        Self::ALL.iter().copied().find(|v| v.code() == code).ok_or_else(|| {
            let known: Vec<String> = Self::ALL.iter().map(|v| format!("{} = {}", v.wgsl_name(), v.code())).collect();
            format!("unknown {} code {code}; known: {}", Self::PREFIX, known.join(", "))
        })
    }
}

/// `LeakyRelu` -> `LEAKY_RELU`.
fn screaming_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Declares a `#[repr(u32)]` enum with explicit codes and implements [`WgslEnum`] for it.
#[macro_export]
#[doc(hidden)]
macro_rules! wgsl_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident : $prefix:literal { $($(#[$vmeta:meta])* $variant:ident = $code:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        $vis enum $name { $($(#[$vmeta])* $variant = $code,)* }

        impl $crate::gpu::wgsl_enum::WgslEnum for $name {
            const PREFIX: &'static str = $prefix;
            const ALL: &'static [Self] = &[$($name::$variant,)*];
            fn code(self) -> u32 {
                self as u32
            }
        }
    };
}

/// The constants of every shared enum, as the registry prepends them to each shader.
pub fn prelude() -> String {
    use crate::tensor::kernels::{BinaryOp, LossKind, ReduceOp, UnaryOp};
    use crate::tensor::matmul::{AOperand, BOperand};
    let mut out = String::from("// Generated from the Rust enums (src/gpu/wgsl_enum.rs): names, not numbers.\n");
    out += &UnaryOp::wgsl_constants();
    out += &BinaryOp::wgsl_constants();
    out += &ReduceOp::wgsl_constants();
    out += &LossKind::wgsl_constants();
    out += &AOperand::wgsl_constants();
    out += &BOperand::wgsl_constants();
    out += QUIET_NAN;
    out
}

/// The NaN a kernel returns for a code without its case, made at run time: WGSL makes a constant
/// expression that evaluates to NaN a shader-creation error (naga lets it pass; Tint, the
/// browsers' compiler, refuses the whole shader).
const QUIET_NAN: &str = "
// A quiet NaN, from a variable: WGSL refuses a constant expression whose value is NaN.
fn quiet_nan() -> f32 {
    var bits = 0x7fc00000u;
    return bitcast<f32>(bits);
}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_screaming_snake() {
        assert_eq!(screaming_snake("LeakyRelu"), "LEAKY_RELU");
        assert_eq!(screaming_snake("Exp"), "EXP");
    }

    #[test]
    fn unknown_codes_are_errors() {
        use crate::tensor::kernels::UnaryOp;
        assert_eq!(UnaryOp::from_code(7), Ok(UnaryOp::Relu));
        let err = UnaryOp::from_code(999).unwrap_err();
        assert!(err.contains("unknown UNARY code 999") && err.contains("UNARY_RELU = 7"), "{err}");
    }
}
