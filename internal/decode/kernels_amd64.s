//go:build gc && !purego

#include "textflag.h"

// The kernels build 8 table indexes at a time in the 32-bit lanes of a YMM
// register, move them two per 64-bit general register, and then load and
// store one float32 per weight with plain MOVL. Each index costs a MOVL
// (the low lane; it zero-extends) or a SHRQ (the high one): 4.3
// instructions a weight under callgrind, against 8.1 for qinsLogUnitGo. A
// VPGATHERDD per 8 indexes was slower on the AMD Zen 3 VM this was tuned on
// (bench/decode/README.md, 2026-12-02).

// PAIR decodes the two indexes in the 64-bit register q, the weights at
// byte offsets off and off+4 of dst+4*BX; it clobbers q, R12 and R13.
#define PAIR(q, off) \
	MOVL q, R12; \
	SHRQ $32, q; \
	MOVL (AX)(R12*4), R13; \
	MOVL R13, off(DI)(BX*4); \
	MOVL (AX)(q*4), R13; \
	MOVL R13, off+4(DI)(BX*4)

// EIGHT decodes the 8 indexes of y (whose low half is x; xh is scratch) to
// the weights at byte offsets off to off+28 of dst+4*BX.
#define EIGHT(y, x, xh, off) \
	VMOVQ x, R8; \
	VPEXTRQ $1, x, R9; \
	VEXTRACTI128 $1, y, xh; \
	VMOVQ xh, R10; \
	VPEXTRQ $1, xh, R11; \
	PAIR(R8, off); \
	PAIR(R9, off+8); \
	PAIR(R10, off+16); \
	PAIR(R11, off+24)

// func qinsLogUnitAVX2(dst *float32, stored, sign *byte, t *[512]float32, n int)
//
// n is a positive multiple of 16. The index of a weight is
// code | sign&0x100 with the code zero-extended and the sign byte
// sign-extended to 32 bits: bit 8 of the sign-extended byte is its bit 7,
// so this is (sign>>7)<<8 | code for any sign byte, as in qinsLogUnitGo.
TEXT ·qinsLogUnitAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ stored+8(FP), SI
	MOVQ sign+16(FP), DX
	MOVQ t+24(FP), AX
	MOVQ n+32(FP), CX
	MOVL $0x100, BX
	MOVD BX, X4
	VPBROADCASTD X4, Y4
	XORQ BX, BX

unitLoop:
	VPMOVZXBD 0(SI)(BX*1), Y0
	VPMOVZXBD 8(SI)(BX*1), Y2
	VPMOVSXBD 0(DX)(BX*1), Y1
	VPMOVSXBD 8(DX)(BX*1), Y3
	VPAND Y4, Y1, Y1
	VPAND Y4, Y3, Y3
	VPOR  Y1, Y0, Y0
	VPOR  Y3, Y2, Y2
	EIGHT(Y0, X0, X1, 0)
	EIGHT(Y2, X2, X3, 32)
	ADDQ $16, BX
	CMPQ BX, CX
	JB   unitLoop

	VZEROUPPER
	RET

// func lookupAVX2(dst *float32, src *byte, t *[256]float32, n int)
//
// n is a positive multiple of 16; the index of a weight is its code.
TEXT ·lookupAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ t+16(FP), AX
	MOVQ n+24(FP), CX
	XORQ BX, BX

lookupLoop:
	VPMOVZXBD 0(SI)(BX*1), Y0
	VPMOVZXBD 8(SI)(BX*1), Y2
	EIGHT(Y0, X0, X1, 0)
	EIGHT(Y2, X2, X3, 32)
	ADDQ $16, BX
	CMPQ BX, CX
	JB   lookupLoop

	VZEROUPPER
	RET

// func cpuid(leaf, sub uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

// func xgetbv0() (lo, hi uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-8
	XORL CX, CX
	XGETBV
	MOVL AX, lo+0(FP)
	MOVL DX, hi+4(FP)
	RET
