"""PVAE (Shi, Glocker & Castro 2019): masked DIP-VAE whose hard-concrete L0 gates prune latent dimensions.

Objective (Shi et al. 2019, eqs. 1 and 3), minimised, per example averaged over the batch, with one gate draw m:

    L = E_q[−log p(x | m∘z)] + Σ_j m_j·KL(q(z_j | x) ‖ N(0, 1))
        + λ_od·Σ_{i≠j} C_ij² + λ_d·Σ_i (C_ii − 1)²  +  τ·Σ_j P(m_j ≠ 0),

    C = Cov_batch[m ∘ μ(x)]                     (DIP-VAE-I, the default and the authors' choice), or
    C = Cov_batch[m ∘ μ(x)] + E_batch[diag(m ∘ σ²(x) + ε)]   (DIP-VAE-II, ``dip_type = "ii"``),

P(m_j ≠ 0) = sigmoid(log α_j − β·log(−γ/ζ)). The latent space (``submission.latent.l0_gate``, gin
``l0_gated_gaussian``) owns everything about the gates: the encoder's heads give the mean and the variance directly
(softplus, a smooth positive map; the authors overwrite non-positive variances with 1e-6, which cuts their
gradient), the gated posterior N(m∘μ, m∘σ² + ε), the masked KL, the penalty τ·Σ_j P(m_j ≠ 0) (τ =
``l0_gated_gaussian.l0_weight``; unnormalised, see that module for why) and the reported ``num_active_dims`` and
``expected_l0``. This model adds only the DIP moment penalty on the gated means: it is ``dip_vae`` on that latent
space, with λ_d given directly.

Defaults are the paper's Table 1: λ_od = 20, λ_d = 2, given directly (note: the reverse of dlib's DIP-VAE-I
convention λ_d = 10·λ_od; dlib's ``dip_vae`` takes ``lambda_d_factor`` instead). The masked KL carries a weight
w_KL (``kl_weight``): 1 by default, as the authors' dSprites trainer hard-wires it; their MNIST trainer takes it as
``gamma`` and the run that pruned 64 → 3 dimensions used 5 (``docs/models/pvae.md`` §6). The reported ``kl_loss`` and
ELBO stay unweighted; only the loss is

    L = E_q[−log p(x | m∘z)] + w_KL·Σ_j m_j·KL_j + DIP + τ·Σ_j P(m_j ≠ 0).

A closed gate leaves a constant (zero) column of the mean, so its C_jj = 0 and the diagonal term charges it λ_d;
the term cannot tell a closed gate from an open but unused dimension, and pushes every dimension towards unit
variance of its mean, i.e. against pruning (``docs/models/pvae.md`` §5): pruning is the balance of that term with the
masked KL and τ.

The gates work with any Gaussian model too (``latent_space.factory = @l0_gated_gaussian``); PVAE always uses them,
whatever ``latent_space.factory`` says.
"""

import gin

from submission.errors import UserError
from submission.latent import l0_gate
from submission.latent.base import DIAGONAL_GAUSSIAN
from submission.models.base import GaussianEncoderModel
from submission.models.dip_vae import check_dip_type, dip_regularizer


@gin.configurable("pvae")
class PVAE(GaussianEncoderModel):
  """L = reconstruction + masked KL + DIP moment penalty on the gated means (``dip_vae.dip_regularizer``) + τ·E[L0]
  (``GatedGaussianLatent.penalty``). Unlike ``dip_vae``, λ_d is given itself, not as a factor of λ_od."""

  posterior = DIAGONAL_GAUSSIAN

  def __init__(self, lambda_od=20., lambda_d=2., dip_type="i", kl_weight=1.):
    super().__init__(name="pvae")
    self.lambda_od = float(lambda_od)
    self.lambda_d = float(lambda_d)
    self.dip_type = check_dip_type(dip_type, "pvae.dip_type")
    if not kl_weight >= 0:
      raise UserError(f"pvae.kl_weight must be >= 0, got {kl_weight}")
    self.kl_weight = float(kl_weight)

  def make_latent_space(self):
    return l0_gate.l0_gated_gaussian()

  def regularizer(self, kl_loss, params, z_sampled, step):
    # dip_regularizer adds the KL once; the weight's remainder (w_KL − 1)·KL is added here.
    return (dip_regularizer(kl_loss, params, self.lambda_od, self.lambda_d, self.dip_type)
            + (self.kl_weight - 1.) * kl_loss)
