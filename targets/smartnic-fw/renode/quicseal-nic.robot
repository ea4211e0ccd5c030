*** Comments ***
quicseal's SmartNIC firmware on Renode: serves one window and reports it over the UART.
Run from the repository's root (`cargo xtask fpga-test` does, once per job, where
`renode-test` is on PATH), with the window and the report's file as variables:
    renode-test targets/smartnic-fw/renode/quicseal-nic.robot --variable WINDOW:... --variable UART_LOG:...
The report's bytes are judged by fpga-test, as the Verilator runs' are.

*** Variables ***
${ELF}          ${CURDIR}/../../../target/smartnic-fw/litex/riscv32im-unknown-none-elf/release/quicseal-nic-fw
${WINDOW}       ${CURDIR}/../../../target/fpga/jobs/bad-descriptors/window.bin
${UART_LOG}     ${CURDIR}/../../../target/fpga/renode-uart.txt

*** Test Cases ***
Serves The Window
    Execute Command            $elf=@${ELF}
    Execute Command            $window=@${WINDOW}
    Execute Command            $uart_log=@${UART_LOG}
    Execute Command            $platform=@${CURDIR}/quicseal-nic.repl
    Execute Script             ${CURDIR}/quicseal-nic.resc
    Create Terminal Tester     sysbus.uart    timeout=240
    Start Emulation
    # The report's last line, whatever the outcome: fpga-test judges the code (0: served).
    Wait For Line On Uart      ^E \\d+$    treatAsRegex=true
