//! The driver's memory calls: allocation, copies and sets (sync and async), pools, page-locked host
//! memory, and the errors of bad pointers, called as a C program calls them.

mod driver_common;

use std::ffi::c_void;
use std::ptr::null_mut;

use cudarc::driver::sys::{
    CUmemAllocationHandleType, CUmemAllocationType, CUmemLocationType, CUmemPoolProps, CUmemPool_attribute as P,
    CUmemoryPool, CUresult, CUstream, CU_MEMHOSTALLOC_WRITECOMBINED,
};
use driver_common::{alloc, ok, read, stream, write, Primary};
use ptx_emulator::driver::*;

const INVALID: CUresult = CUresult::CUDA_ERROR_INVALID_VALUE;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn copies_round_trip() {
    let _ctx = Primary::open();
    let (a, b) = (alloc(1000), alloc(1000));
    assert_eq!(a % 256, 0, "allocations are 256-byte aligned");
    write(a, &pattern(1000));
    assert_eq!(read(a, 1000), pattern(1000));
    // SAFETY: plain device copies between live allocations.
    unsafe {
        ok(cuMemcpyDtoD_v2(b, a, 1000));
        ok(cuMemcpyDtoD_v2(b + 10, a + 500, 100));
        ok(cuMemcpyDtoD_v2(b, a, 0));
    }
    let mut expected = pattern(1000);
    expected.copy_within(500..600, 10);
    assert_eq!(read(b, 1000), expected);
    write(b + 999, &[42]);
    assert_eq!(read(b + 998, 2), [expected[998], 42]);
    // SAFETY: frees of the allocations above.
    unsafe {
        ok(cuMemFree_v2(a));
        ok(cuMemFree_v2(b));
    }
}

#[test]
fn async_copies_on_streams_and_the_default_stream() {
    let _ctx = Primary::open();
    let s = stream();
    let (a, b) = (alloc(64), alloc(64));
    let src = pattern(64);
    let mut dst = vec![0u8; 64];
    for handle in [s, null_mut(), 1 as CUstream, 2 as CUstream] {
        dst.fill(0);
        // SAFETY: host buffers of 64 bytes and live allocations.
        unsafe {
            ok(cuMemcpyHtoDAsync_v2(a, src.as_ptr().cast(), 64, handle));
            ok(cuMemcpyDtoDAsync_v2(b, a, 64, handle));
            ok(cuMemcpyDtoHAsync_v2(dst.as_mut_ptr().cast(), b, 64, handle));
            ok(cuStreamSynchronize(handle));
        }
        assert_eq!(dst, src);
    }
    // SAFETY: the stream and allocations above.
    unsafe {
        ok(cuMemFree_v2(a));
        ok(cuMemFree_v2(b));
        ok(cuStreamDestroy_v2(s));
    }
}

#[test]
fn generic_copies_find_each_end() {
    let _ctx = Primary::open();
    let (a, b) = (alloc(32), alloc(32));
    let src = pattern(32);
    let mut dst = vec![0u8; 32];
    let s = stream();
    // SAFETY: host buffers of 32 bytes and live allocations.
    unsafe {
        ok(cuMemcpy(a, src.as_ptr() as u64, 32));
        ok(cuMemcpyAsync(b, a, 32, s));
        ok(cuMemcpy(dst.as_mut_ptr() as u64, b, 32));
        let mut ctx = null_mut();
        ok(cuCtxGetCurrent(&mut ctx));
        ok(cuMemcpyPeer(a, ctx, b, ctx, 32));
        ok(cuMemcpyPeerAsync(a, ctx, b, ctx, 32, s));
    }
    assert_eq!(dst, src);
    assert_eq!(read(a, 32), src);
}

#[test]
fn sets_of_each_width() {
    let _ctx = Primary::open();
    let s = stream();
    let a = alloc(64);
    // SAFETY: sets inside the allocation.
    unsafe {
        ok(cuMemsetD8_v2(a, 0xab, 64));
        assert_eq!(read(a, 64), [0xab; 64]);
        ok(cuMemsetD16_v2(a + 2, 0x1234, 3));
        assert_eq!(
            read(a, 10),
            [0xab, 0xab, 0x34, 0x12, 0x34, 0x12, 0x34, 0x12, 0xab, 0xab]
        );
        ok(cuMemsetD32_v2(a + 16, 0xdeadbeef, 2));
        assert_eq!(read(a + 16, 8), [0xef, 0xbe, 0xad, 0xde, 0xef, 0xbe, 0xad, 0xde]);
        ok(cuMemsetD8Async(a, 1, 4, s));
        ok(cuMemsetD16Async(a + 4, 0x0302, 1, s));
        ok(cuMemsetD32Async(a + 8, 0x07060504, 1, s));
        assert_eq!(read(a, 12), [1, 1, 1, 1, 2, 3, 0x34, 0x12, 4, 5, 6, 7]);
        ok(cuMemsetD32_v2(a, 0, 0));

        assert_eq!(cuMemsetD16_v2(a + 1, 0, 1), INVALID, "misaligned");
        assert_eq!(cuMemsetD32Async(a + 2, 0, 1, s), INVALID, "misaligned");
        assert_eq!(cuMemsetD32_v2(a, 0, 17), INVALID, "past the end");
        ok(cuMemFree_v2(a));
    }
}

#[test]
fn bad_pointers_are_refused() {
    let _ctx = Primary::open();
    let a = alloc(100);
    let mut host = [0u8; 200];
    // SAFETY: the host buffer holds 200 bytes; the device pointers are what is being tested.
    unsafe {
        assert_eq!(cuMemcpyHtoD_v2(a, host.as_ptr().cast(), 101), INVALID);
        assert_eq!(cuMemcpyDtoH_v2(host.as_mut_ptr().cast(), a + 50, 51), INVALID);
        assert_eq!(cuMemcpyDtoD_v2(a, a + 4096, 4), INVALID);
        assert_eq!(cuMemcpyHtoD_v2(a, std::ptr::null(), 4), INVALID);
        assert_eq!(cuMemsetD8_v2(16, 0, 1), INVALID);
        assert_eq!(cuMemFree_v2(a + 8), INVALID, "not the start of an allocation");
        assert_eq!(cuMemFree_v2(0), INVALID);
        let mut ptr = 0;
        assert_eq!(cuMemAlloc_v2(&mut ptr, 0), INVALID);
        assert_eq!(cuMemAlloc_v2(&mut ptr, 81 << 30), CUresult::CUDA_ERROR_OUT_OF_MEMORY);
        assert_eq!(cuMemAlloc_v2(null_mut(), 16), INVALID);
        ok(cuMemFree_v2(a));
        assert_eq!(cuMemFree_v2(a), INVALID, "freed twice");
        assert_eq!(cuMemcpyHtoD_v2(a, host.as_ptr().cast(), 1), INVALID, "freed memory");
    }
}

#[test]
fn memory_info_and_address_ranges() {
    let _ctx = Primary::open();
    let a = alloc(64 << 20);
    // SAFETY: valid out-parameters.
    unsafe {
        let (mut free, mut total) = (0, 0);
        ok(cuMemGetInfo_v2(&mut free, &mut total));
        assert_eq!(total, 80 << 30);
        assert!(free <= total - (64 << 20));
        let (mut base, mut size) = (0, 0);
        ok(cuMemGetAddressRange_v2(&mut base, &mut size, a + 12345));
        assert_eq!((base, size), (a, 64 << 20));
        ok(cuMemGetAddressRange_v2(null_mut(), &mut size, a));
        assert_eq!(
            cuMemGetAddressRange_v2(&mut base, &mut size, a + (64 << 20)),
            CUresult::CUDA_ERROR_NOT_FOUND
        );
        ok(cuMemFree_v2(a));
    }
}

fn pool_size(pool: CUmemoryPool, attr: P) -> u64 {
    let mut value = u64::MAX;
    // SAFETY: the attribute is a cuuint64_t.
    ok(unsafe { cuMemPoolGetAttribute(pool, attr as u32, (&mut value as *mut u64).cast()) });
    value
}

#[test]
fn the_default_pool_serves_stream_ordered_allocations() {
    let _ctx = Primary::open();
    let s = stream();
    // SAFETY: valid out-parameters and values of the attributes' types.
    unsafe {
        let (mut default, mut current) = (null_mut(), null_mut());
        ok(cuDeviceGetDefaultMemPool(&mut default, 0));
        ok(cuDeviceGetMemPool(&mut current, 0));
        assert_eq!(default, current);
        ok(cuDeviceSetMemPool(0, default));
        assert_eq!(
            cuDeviceSetMemPool(0, 5 as CUmemoryPool),
            CUresult::CUDA_ERROR_INVALID_HANDLE
        );

        let mut threshold = u64::MAX;
        let attr = P::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD as u32;
        ok(cuMemPoolSetAttribute(
            default,
            attr,
            (&mut threshold as *mut u64).cast(),
        ));
        assert_eq!(pool_size(default, P::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD), u64::MAX);
        let mut reuse = 0i32;
        let attr = P::CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC as u32;
        ok(cuMemPoolGetAttribute(default, attr, (&mut reuse as *mut i32).cast()));
        assert_eq!(reuse, 1);
        assert_eq!(
            cuMemPoolGetAttribute(default, 77, (&mut reuse as *mut i32).cast()),
            INVALID
        );
        ok(cuMemPoolTrimTo(default, 0));

        let mut ptr = 0;
        ok(cuMemAllocAsync(&mut ptr, 4096, s));
        write(ptr, &pattern(4096));
        assert_eq!(read(ptr, 4096), pattern(4096));
        ok(cuMemFreeAsync(ptr, s));
        assert_eq!(cuMemFreeAsync(ptr, s), INVALID, "freed twice");
        assert_eq!(cuMemAllocAsync(&mut ptr, 0, s), INVALID);
        assert_eq!(cuMemPoolDestroy(default), INVALID, "the default pool stays");
    }
}

#[test]
fn a_created_pool_counts_its_memory() {
    let _ctx = Primary::open();
    let s = stream();
    // SAFETY: valid out-parameters, properties and values of the attributes' types.
    unsafe {
        let mut props: CUmemPoolProps = std::mem::zeroed();
        props.allocType = CUmemAllocationType::CU_MEM_ALLOCATION_TYPE_PINNED;
        props.handleTypes = CUmemAllocationHandleType::CU_MEM_HANDLE_TYPE_NONE;
        props.location.type_ = CUmemLocationType::CU_MEM_LOCATION_TYPE_DEVICE;
        let mut pool = null_mut();
        ok(cuMemPoolCreate(&mut pool, &props));
        let mut ptr = 0;
        ok(cuMemAllocFromPoolAsync(&mut ptr, 1000, pool, s));
        assert_eq!(pool_size(pool, P::CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 1000);
        assert_eq!(pool_size(pool, P::CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 1000);
        ok(cuMemFreeAsync(ptr, s));
        assert_eq!(pool_size(pool, P::CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0);
        assert_eq!(pool_size(pool, P::CU_MEMPOOL_ATTR_USED_MEM_HIGH), 1000);
        let mut zero = 0u64;
        let high = P::CU_MEMPOOL_ATTR_USED_MEM_HIGH as u32;
        ok(cuMemPoolSetAttribute(pool, high, (&mut zero as *mut u64).cast()));
        assert_eq!(pool_size(pool, P::CU_MEMPOOL_ATTR_USED_MEM_HIGH), 0);
        let mut one = 1u64;
        assert_eq!(
            cuMemPoolSetAttribute(pool, high, (&mut one as *mut u64).cast()),
            INVALID
        );
        let current = P::CU_MEMPOOL_ATTR_USED_MEM_CURRENT as u32;
        assert_eq!(
            cuMemPoolSetAttribute(pool, current, (&mut zero as *mut u64).cast()),
            INVALID
        );

        ok(cuMemPoolDestroy(pool));
        assert_eq!(
            cuMemAllocFromPoolAsync(&mut ptr, 8, pool, s),
            CUresult::CUDA_ERROR_INVALID_HANDLE
        );
        props.handleTypes = CUmemAllocationHandleType::CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
        assert_eq!(cuMemPoolCreate(&mut pool, &props), CUresult::CUDA_ERROR_NOT_SUPPORTED);
    }
}

#[test]
fn page_locked_host_memory() {
    let _ctx = Primary::open();
    let a = alloc(256);
    // SAFETY: the host memory is the driver's page-locked allocation of 256 bytes, or a local.
    unsafe {
        let mut p: *mut c_void = null_mut();
        ok(cuMemHostAlloc(&mut p, 256, CU_MEMHOSTALLOC_WRITECOMBINED));
        assert_eq!(p as usize % 4096, 0);
        let host = std::slice::from_raw_parts_mut(p.cast::<u8>(), 256);
        host.copy_from_slice(&pattern(256));
        ok(cuMemcpyHtoDAsync_v2(a, p, 256, stream()));
        host.fill(0);
        ok(cuMemcpyDtoH_v2(p, a, 256));
        assert_eq!(host, &pattern(256)[..]);
        let mut flags = 0;
        ok(cuMemHostGetFlags(&mut flags, p.cast::<u8>().add(100).cast()));
        assert_eq!(flags, CU_MEMHOSTALLOC_WRITECOMBINED);
        ok(cuMemFreeHost(p));
        assert_eq!(cuMemFreeHost(p), INVALID, "freed twice");
        assert_eq!(cuMemHostAlloc(&mut p, 16, 1 << 10), INVALID);

        ok(cuMemAllocHost_v2(&mut p, 10));
        ok(cuMemFreeHost(p));

        let mut buffer = vec![0u8; 8192];
        let base = buffer.as_mut_ptr().cast::<c_void>();
        ok(cuMemHostRegister_v2(base, 8192, 0));
        assert_eq!(
            cuMemHostRegister_v2(base.cast::<u8>().add(4096).cast(), 16, 0),
            CUresult::CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED
        );
        assert_eq!(
            cuMemFreeHost(base),
            INVALID,
            "registered memory is not the driver's to free"
        );
        ok(cuMemHostUnregister(base));
        assert_eq!(
            cuMemHostUnregister(base),
            CUresult::CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED
        );
        ok(cuMemFree_v2(a));
    }
}

#[test]
fn threads_share_the_primary_context() {
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let _ctx = Primary::open();
                let s = stream();
                for i in 0..50 {
                    let bytes = pattern(64 + t * 8 + i);
                    let mut back = vec![0u8; bytes.len()];
                    // SAFETY: host buffers of bytes.len() bytes and the allocation just made.
                    unsafe {
                        let mut ptr = 0;
                        ok(cuMemAllocAsync(&mut ptr, bytes.len(), s));
                        ok(cuMemcpyHtoDAsync_v2(ptr, bytes.as_ptr().cast(), bytes.len(), s));
                        ok(cuMemcpyDtoHAsync_v2(back.as_mut_ptr().cast(), ptr, bytes.len(), s));
                        ok(cuMemFreeAsync(ptr, s));
                    }
                    assert_eq!(back, bytes);
                }
                // SAFETY: the stream made above.
                ok(unsafe { cuStreamDestroy_v2(s) });
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
