import Mathlib

/-! Rearrange a product of three reals. -/

example (a b c : ℝ) : c * b * a = b * (a * c) := by
  sorry
