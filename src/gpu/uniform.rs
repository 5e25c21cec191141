//! Parameter blocks shared with WGSL: each Rust struct declared through `uniform!` knows its
//! fields' offsets, and the first dispatch of every pipeline checks them against the shader's
//! declaration as naga lays it out (size and the offset of every named field), so a field
//! added, moved or retyped on one side only is an error naming the field, not garbage math.

/// A `#[repr(C)]` parameter block whose layout can be checked against WGSL.
pub trait UniformLayout: bytemuck::Pod {
    /// (field name, byte offset) of every field, in declaration order.
    const FIELDS: &'static [(&'static str, usize)];
}

/// Declares a parameter struct (write its `#[repr(C)]` and derives as usual) and implements
/// [`UniformLayout`] for it.
#[macro_export]
#[doc(hidden)]
macro_rules! uniform {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        $vis struct $name { $($(#[$fmeta])* $fvis $field: $ty,)* }

        impl $crate::gpu::uniform::UniformLayout for $name {
            const FIELDS: &'static [(&'static str, usize)] =
                &[$((stringify!($field), std::mem::offset_of!($name, $field)),)*];
        }
    };
}

/// A WGSL uniform struct as naga lays it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniformDecl {
    /// The struct's name in the shader.
    pub name: String,
    /// Its size in bytes.
    pub size: u32,
    /// (member name, byte offset) in declaration order.
    pub members: Vec<(String, u32)>,
}

/// Padding fields (names starting with `_`) are free to differ in name and count; every other
/// field must sit at the same offset on both sides, and the sizes must agree.
pub fn check_layout<P: UniformLayout>(shader: &str, decl: &UniformDecl) -> Result<(), String> {
    let rust_name = std::any::type_name::<P>();
    let size = std::mem::size_of::<P>();
    let mut problems = Vec::new();
    if size != decl.size as usize {
        problems.push(format!("size: Rust {size} bytes, WGSL {} bytes", decl.size));
    }
    let named = |n: &str| !n.starts_with('_');
    for (field, offset) in P::FIELDS.iter().filter(|f| named(f.0)) {
        match decl.members.iter().find(|m| m.0 == *field) {
            None => problems.push(format!("field `{field}` (offset {offset}) is not in the WGSL struct")),
            Some((_, o)) if *o as usize != *offset => {
                problems.push(format!("field `{field}`: offset {offset} in Rust, {o} in WGSL"))
            }
            Some(_) => {}
        }
    }
    for (member, offset) in decl.members.iter().filter(|m| named(&m.0)) {
        if !P::FIELDS.iter().any(|f| f.0 == member) {
            problems.push(format!("WGSL member `{member}` (offset {offset}) has no Rust field"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{rust_name} does not match {shader}'s `{}`:\n  {}", decl.name, problems.join("\n  ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytemuck::{Pod, Zeroable};

    crate::uniform! {
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable)]
        struct Probe {
            n: u32,
            scale: f32,
            _pad: [u32; 2],
        }
    }

    fn decl(members: &[(&str, u32)], size: u32) -> UniformDecl {
        UniformDecl { name: "Params".into(), size, members: members.iter().map(|(n, o)| (n.to_string(), *o)).collect() }
    }

    #[test]
    fn matching_layouts_pass_and_padding_names_are_free() {
        let wgsl = decl(&[("n", 0), ("scale", 4), ("_pad0", 8), ("_pad1", 12)], 16);
        assert_eq!(check_layout::<Probe>("probe.wgsl", &wgsl), Ok(()));
    }

    #[test]
    fn moved_missing_and_extra_fields_and_sizes_are_named() {
        let err = check_layout::<Probe>("probe.wgsl", &decl(&[("scale", 0), ("n", 4), ("extra", 8)], 32)).unwrap_err();
        for want in
            ["size: Rust 16 bytes, WGSL 32", "`n`: offset 0 in Rust, 4 in WGSL", "`extra` (offset 8) has no Rust field"]
        {
            assert!(err.contains(want), "missing '{want}' in:\n{err}");
        }
        let err = check_layout::<Probe>("probe.wgsl", &decl(&[("n", 0)], 16)).unwrap_err();
        assert!(err.contains("`scale` (offset 4) is not in the WGSL struct"), "{err}");
    }
}
