//! The subgroup matmul's code-shaping choices (matmul_subgroup.wgsl's `A_MODE` and `B_MODE`
//! override constants), named once here; the shader sees the generated constants
//! (`B_MODE_ROWS_TEXTURE`, ...).

crate::wgsl_enum! {
    /// How the subgroup matmul reads B.
    pub enum BOperand: "B_MODE" {
        /// Any strides, scalar loads.
        Strided = 0,
        /// Contiguous along N: vec4 loads of four columns.
        RowsVec4 = 1,
        /// Contiguous along K: a vec4 holds four k of one column.
        ColumnsVec4 = 2,
        /// As `RowsVec4`, from a texture copy whose texel rows are B's rows.
        RowsTexture = 3,
        /// As `ColumnsVec4`, from a texture copy whose texel rows are B's columns.
        ColumnsTexture = 4,
        /// A transposed convolution by output phase, gathered from the image (implicit GEMM).
        ConvPhases = 5,
        /// A convolution's patches gathered from the image (implicit GEMM).
        ConvPatches = 6,
    }
}

crate::wgsl_enum! {
    /// How the subgroup matmul reads A.
    pub enum AOperand: "A_MODE" {
        /// Any strides, from storage.
        Strided = 0,
        /// From a texture copy whose texel rows are A's lines along K.
        TextureAlongK = 1,
        /// From a texture copy whose texel rows are A's lines along M (whole tiles of rows).
        TextureAlongM = 2,
        /// A convolution's patch matrix gathered from the image's texture copy (weight gradients).
        ConvPatches = 3,
    }
}

impl BOperand {
    /// Whether a lane's columns run along N (four consecutive columns per vec4).
    pub fn along_n(self) -> bool {
        matches!(self, BOperand::RowsVec4 | BOperand::RowsTexture | BOperand::ConvPhases | BOperand::ConvPatches)
    }
}
