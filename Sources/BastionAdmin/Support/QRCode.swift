/// A QR code (ISO/IEC 18004) for the TOTP enrolment page: byte mode, error correction level M,
/// the smallest version that fits, and the mask with the lowest penalty. Only what an
/// `otpauth://` URI needs — no other modes or levels. The structure follows Project Nayuki's
/// reference generator: function patterns, codewords with Reed–Solomon blocks interleaved, zig-zag
/// placement, masking, format and version information.
public struct QRCode: Sendable, Hashable {
    public let version: Int
    public let mask: Int
    /// Side length in modules (without the quiet zone).
    public let size: Int
    /// Row-major: `modules[y * size + x]`, true = dark.
    public let modules: [Bool]

    public enum EncodeError: Error, Equatable {
        /// More than the 2,331 bytes version 40-M holds.
        case tooLong
    }

    public subscript(x: Int, y: Int) -> Bool { modules[y * size + x] }

    /// Encodes `data` in byte mode at level M. `forceMask` (0–7) skips the mask selection (tests).
    public init(bytes data: [UInt8], forceMask: Int? = nil) throws(EncodeError) {
        guard let version = (1...40).first(where: { Self.fits(data.count, version: $0) }) else { throw .tooLong }
        var builder = Builder(version: version)
        builder.drawFunctionPatterns()
        builder.drawCodewords(Self.codewords(data, version: version))
        let chosen = forceMask ?? builder.bestMask()
        builder.applyMask(chosen)
        builder.drawFormatBits(mask: chosen)
        self.version = version
        self.mask = chosen
        self.size = builder.size
        self.modules = builder.modules
    }

    public init(text: String, forceMask: Int? = nil) throws(EncodeError) {
        try self.init(bytes: Array(text.utf8), forceMask: forceMask)
    }

    /// The penalty score (ISO/IEC 18004 §7.8.3) of this symbol, as used to pick the mask.
    public var penalty: Int {
        var builder = Builder(version: version)
        builder.modules = modules
        return builder.penaltyScore()
    }

    /// An SVG image with a four-module quiet zone; `scale` pixels per module. The output holds
    /// only numbers computed here, so it is safe to embed in a page unescaped.
    public func svg(scale: Int = 5) -> String {
        let border = 4
        let side = size + 2 * border
        var path = ""
        for y in 0..<size {
            for x in 0..<size where self[x, y] {
                path += "M\(x + border) \(y + border)h1v1h-1z"
            }
        }
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(side) \(side)\" width=\"\(side * scale)\" height=\"\(side * scale)\" "
            + "shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code\"><rect width=\"\(side)\" height=\"\(side)\" fill=\"#fff\"/>"
            + "<path d=\"\(path)\" fill=\"#000\"/></svg>"
    }

    // MARK: Capacity and codewords

    /// Level M error correction codewords per block, by version (index 0 unused).
    static let eccCodewordsPerBlock = [-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28,
                                       28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28]
    /// Level M error correction blocks, by version.
    static let eccBlocks = [-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31,
                            33, 35, 37, 38, 40, 43, 45, 47, 49]

    /// Modules available for data and error correction (everything but function patterns).
    static func rawDataModules(version v: Int) -> Int {
        var result = (16 * v + 128) * v + 64
        if v >= 2 {
            let alignments = v / 7 + 2
            result -= (25 * alignments - 10) * alignments - 55
            if v >= 7 { result -= 36 }
        }
        return result
    }

    static func dataCodewords(version v: Int) -> Int {
        rawDataModules(version: v) / 8 - eccCodewordsPerBlock[v] * eccBlocks[v]
    }

    static func countBits(version v: Int) -> Int { v <= 9 ? 8 : 16 }

    static func fits(_ count: Int, version v: Int) -> Bool {
        count < 1 << countBits(version: v) && 4 + countBits(version: v) + 8 * count <= dataCodewords(version: v) * 8
    }

    /// Mode, length, data, terminator and padding, split into blocks with their Reed–Solomon
    /// codewords and interleaved.
    static func codewords(_ data: [UInt8], version v: Int) -> [UInt8] {
        var bits = BitBuffer()
        bits.append(0b0100, count: 4)
        bits.append(data.count, count: countBits(version: v))
        for byte in data { bits.append(Int(byte), count: 8) }
        let capacity = dataCodewords(version: v) * 8
        bits.append(0, count: min(4, capacity - bits.count))
        bits.append(0, count: (8 - bits.count % 8) % 8)
        var padByte = 0xEC
        while bits.count < capacity {
            bits.append(padByte, count: 8)
            padByte ^= 0xEC ^ 0x11
        }
        let dataBytes = bits.bytes

        let blocks = eccBlocks[v]
        let eccLength = eccCodewordsPerBlock[v]
        let raw = rawDataModules(version: v) / 8
        let shortBlocks = blocks - raw % blocks
        let shortLength = raw / blocks
        let divisor = ReedSolomon.divisor(degree: eccLength)
        var split: [[UInt8]] = []
        var k = 0
        for i in 0..<blocks {
            let length = shortLength - eccLength + (i < shortBlocks ? 0 : 1)
            var block = Array(dataBytes[k..<(k + length)])
            k += length
            let ecc = ReedSolomon.remainder(block, divisor: divisor)
            if i < shortBlocks { block.append(0) }
            split.append(block + ecc)
        }
        var result: [UInt8] = []
        for i in 0..<split[0].count {
            for (j, block) in split.enumerated() where i != shortLength - eccLength || j >= shortBlocks {
                result.append(block[i])
            }
        }
        return result
    }

    struct BitBuffer {
        var storage: [Bool] = []
        var count: Int { storage.count }

        mutating func append(_ value: Int, count: Int) {
            for i in stride(from: count - 1, through: 0, by: -1) { storage.append((value >> i) & 1 == 1) }
        }

        var bytes: [UInt8] {
            stride(from: 0, to: storage.count, by: 8).map { start in
                (0..<8).reduce(UInt8(0)) { $0 << 1 | (storage[start + $1] ? 1 : 0) }
            }
        }
    }

    enum ReedSolomon {
        /// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x^2 + 1.
        static func multiply(_ x: UInt8, _ y: UInt8) -> UInt8 {
            var z = 0
            for i in stride(from: 7, through: 0, by: -1) {
                z = (z << 1) ^ ((z >> 7) * 0x11D)
                z ^= Int((y >> UInt8(i)) & 1) * Int(x)
            }
            return UInt8(z)
        }

        static func divisor(degree: Int) -> [UInt8] {
            var result = [UInt8](repeating: 0, count: degree)
            result[degree - 1] = 1
            var root: UInt8 = 1
            for _ in 0..<degree {
                for j in 0..<degree {
                    result[j] = multiply(result[j], root)
                    if j + 1 < degree { result[j] ^= result[j + 1] }
                }
                root = multiply(root, 0x02)
            }
            return result
        }

        static func remainder(_ data: [UInt8], divisor: [UInt8]) -> [UInt8] {
            var result = [UInt8](repeating: 0, count: divisor.count)
            for byte in data {
                let factor = byte ^ result.removeFirst()
                result.append(0)
                for i in 0..<divisor.count { result[i] ^= multiply(divisor[i], factor) }
            }
            return result
        }
    }

    // MARK: Placement

    struct Builder {
        let version: Int
        let size: Int
        var modules: [Bool]
        var isFunction: [Bool]

        init(version: Int) {
            self.version = version
            size = version * 4 + 17
            modules = Array(repeating: false, count: size * size)
            isFunction = Array(repeating: false, count: size * size)
        }

        func dark(_ x: Int, _ y: Int) -> Bool { modules[y * size + x] }

        mutating func setFunction(_ x: Int, _ y: Int, _ dark: Bool) {
            modules[y * size + x] = dark
            isFunction[y * size + x] = true
        }

        mutating func drawFunctionPatterns() {
            for i in 0..<size {
                setFunction(6, i, i % 2 == 0)
                setFunction(i, 6, i % 2 == 0)
            }
            drawFinder(3, 3)
            drawFinder(size - 4, 3)
            drawFinder(3, size - 4)
            let positions = alignmentPositions()
            let n = positions.count
            for i in 0..<n {
                for j in 0..<n where !((i == 0 && j == 0) || (i == 0 && j == n - 1) || (i == n - 1 && j == 0)) {
                    drawAlignment(positions[i], positions[j])
                }
            }
            drawFormatBits(mask: 0)  // reserves the area; rewritten once the mask is chosen
            drawVersion()
        }

        mutating func drawFinder(_ x: Int, _ y: Int) {
            for dy in -4...4 {
                for dx in -4...4 {
                    let distance = max(abs(dx), abs(dy))
                    let xx = x + dx, yy = y + dy
                    if (0..<size).contains(xx), (0..<size).contains(yy) { setFunction(xx, yy, distance != 2 && distance != 4) }
                }
            }
        }

        mutating func drawAlignment(_ x: Int, _ y: Int) {
            for dy in -2...2 {
                for dx in -2...2 { setFunction(x + dx, y + dy, max(abs(dx), abs(dy)) != 1) }
            }
        }

        func alignmentPositions() -> [Int] {
            guard version > 1 else { return [] }
            let count = version / 7 + 2
            let step = (version * 8 + count * 3 + 5) / (count * 4 - 4) * 2
            return ((0..<(count - 1)).map { size - 7 - $0 * step } + [6]).reversed()
        }

        mutating func drawFormatBits(mask: Int) {
            // Level M's format bits are 00.
            let data = 0 << 3 | mask
            var remainder = data
            for _ in 0..<10 { remainder = (remainder << 1) ^ ((remainder >> 9) * 0x537) }
            let bits = (data << 10 | remainder) ^ 0x5412
            func bit(_ i: Int) -> Bool { (bits >> i) & 1 == 1 }
            for i in 0...5 { setFunction(8, i, bit(i)) }
            setFunction(8, 7, bit(6))
            setFunction(8, 8, bit(7))
            setFunction(7, 8, bit(8))
            for i in 9..<15 { setFunction(14 - i, 8, bit(i)) }
            for i in 0..<8 { setFunction(size - 1 - i, 8, bit(i)) }
            for i in 8..<15 { setFunction(8, size - 15 + i, bit(i)) }
            setFunction(8, size - 8, true)
        }

        mutating func drawVersion() {
            guard version >= 7 else { return }
            var remainder = version
            for _ in 0..<12 { remainder = (remainder << 1) ^ ((remainder >> 11) * 0x1F25) }
            let bits = version << 12 | remainder
            for i in 0..<18 {
                let dark = (bits >> i) & 1 == 1
                let a = size - 11 + i % 3, b = i / 3
                setFunction(a, b, dark)
                setFunction(b, a, dark)
            }
        }

        /// Zig-zag placement in two-module columns from the bottom right, skipping the timing column.
        mutating func drawCodewords(_ data: [UInt8]) {
            var i = 0
            var right = size - 1
            while right >= 1 {
                if right == 6 { right = 5 }
                for vertical in 0..<size {
                    for j in 0..<2 {
                        let x = right - j
                        let upward = (right + 1) & 2 == 0
                        let y = upward ? size - 1 - vertical : vertical
                        if !isFunction[y * size + x], i < data.count * 8 {
                            modules[y * size + x] = (data[i >> 3] >> UInt8(7 - (i & 7))) & 1 == 1
                            i += 1
                        }
                    }
                }
                right -= 2
            }
        }

        mutating func applyMask(_ mask: Int) {
            for y in 0..<size {
                for x in 0..<size where !isFunction[y * size + x] {
                    let invert: Bool
                    switch mask {
                    case 0: invert = (x + y) % 2 == 0
                    case 1: invert = y % 2 == 0
                    case 2: invert = x % 3 == 0
                    case 3: invert = (x + y) % 3 == 0
                    case 4: invert = (x / 3 + y / 2) % 2 == 0
                    case 5: invert = x * y % 2 + x * y % 3 == 0
                    case 6: invert = (x * y % 2 + x * y % 3) % 2 == 0
                    default: invert = ((x + y) % 2 + x * y % 3) % 2 == 0
                    }
                    if invert { modules[y * size + x].toggle() }
                }
            }
        }

        mutating func bestMask() -> Int {
            var best = 0
            var lowest = Int.max
            for mask in 0..<8 {
                applyMask(mask)
                drawFormatBits(mask: mask)
                let score = penaltyScore()
                if score < lowest {
                    lowest = score
                    best = mask
                }
                applyMask(mask)  // XOR again: undone
            }
            return best
        }

        func penaltyScore() -> Int {
            var result = 0
            for horizontal in [true, false] {
                for a in 0..<size {
                    var runColor = false
                    var run = 0
                    var history = [Int](repeating: 0, count: 7)
                    for b in 0..<size {
                        let color = horizontal ? dark(b, a) : dark(a, b)
                        if color == runColor {
                            run += 1
                            if run == 5 { result += 3 } else if run > 5 { result += 1 }
                        } else {
                            addHistory(run, &history)
                            if !runColor { result += countFinderLike(history) * 40 }
                            runColor = color
                            run = 1
                        }
                    }
                    result += terminateAndCount(runColor, run, &history) * 40
                }
            }
            for y in 0..<(size - 1) {
                for x in 0..<(size - 1) {
                    let c = dark(x, y)
                    if c == dark(x + 1, y), c == dark(x, y + 1), c == dark(x + 1, y + 1) { result += 3 }
                }
            }
            let darkCount = modules.filter { $0 }.count
            let total = size * size
            let k = (abs(darkCount * 20 - total * 10) + total - 1) / total - 1
            result += k * 10
            return result
        }

        func countFinderLike(_ h: [Int]) -> Int {
            let n = h[1]
            let core = n > 0 && h[2] == n && h[3] == n * 3 && h[4] == n && h[5] == n
            return (core && h[0] >= n * 4 && h[6] >= n ? 1 : 0) + (core && h[6] >= n * 4 && h[0] >= n ? 1 : 0)
        }

        func terminateAndCount(_ color: Bool, _ run: Int, _ history: inout [Int]) -> Int {
            var run = run
            if color {
                addHistory(run, &history)
                run = 0
            }
            run += size  // the light quiet zone after the last run
            addHistory(run, &history)
            return countFinderLike(history)
        }

        func addHistory(_ run: Int, _ history: inout [Int]) {
            var run = run
            if history[0] == 0 { run += size }  // the light quiet zone before the first run
            history.removeLast()
            history.insert(run, at: 0)
        }
    }
}
