//! Parity with PyTorch's golden vectors.
