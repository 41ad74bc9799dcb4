import Mathlib

/-! Intersection distributes over union. -/

variable {α : Type*} (a b c : Set α)

example : a ∩ (b ∪ c) = (a ∩ b) ∪ (a ∩ c) := by
  sorry
