"""hal_sleep_wake: hierarchical LoRA sleep-wake consolidation on ResNet-18.

The hierarchy (seed prototype's vision-stack mapping of the HAL paper):

* L1 - :class:`hal_sleep_wake.memory.RingBuffer`, a task-batch ring buffer (reservoir or FIFO) on the device;
* L2 - LoRA adapters on every Conv2d, the residual downsample projections and the classifier;
* L3 - the ResNet-18 base weights (torchvision), frozen while awake, changed only by sleep.

Wake trains L2 with replay from L1; NREM merges L2 into L3 (``W <- W + s (alpha/r) B A``) and resets it;
REM distils the merged model on dreams recombined from L1. The reference methods of the continual-learning
literature (fine-tuning, joint, EWC, LwF, ER, DER++, A-GEM) share the learner (``hal_sleep_wake.methods``).
Importing this package loads no torch.
"""

__version__ = "0.1.0"
